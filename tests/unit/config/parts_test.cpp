// The small parsers under the loader: durations, addresses, AMQP URIs, "did you mean", regexes.

#include <gtest/gtest.h>

#include "config/reader.hpp"
#include "config/uri.hpp"
#include "mqdr/config_loader.hpp"

namespace mqdr::config {
namespace {

using namespace std::chrono_literals;

TEST(Duration, ParsesEveryUnitAndCombinations) {
  struct Row {
    const char* text;
    Duration want;
  };
  const Row rows[] = {
      {"500ms", 500ms}, {"2s", 2s},       {"5m", 5min},          {"1h", 1h},
      {"30d", 720h},    {"1m30s", 90s},   {"1h30m", 90min},      {"1d2h3m4s5ms", 93784005ms},
      {"0", 0ms},       {"0s", 0ms},      {" 10s ", 10s},        {"-5s", -5s},
      {"+5s", 5s},      {"1s500ms", 1500ms},
  };
  for (const auto& r : rows) {
    auto d = parse_duration(r.text);
    ASSERT_TRUE(d.has_value()) << r.text;
    EXPECT_EQ(*d, r.want) << r.text;
  }
}

TEST(Duration, RefusesMalformedText) {
  for (const char* text : {"", "5", "s", "ms", "5x", "1s1m", "1m1m", "1.5s", "1 s", "5 minutes",
                           "--5s", "5s-", "1e3s", "9999999999999999d", "99999999999999d"}) {
    EXPECT_FALSE(parse_duration(text).has_value()) << text;
  }
}

TEST(Duration, FormatsTheShortestForm) {
  EXPECT_EQ(format_duration(0ms), "0s");
  EXPECT_EQ(format_duration(90s), "1m30s");
  EXPECT_EQ(format_duration(500ms), "500ms");
  EXPECT_EQ(format_duration(720h), "30d");
  EXPECT_EQ(format_duration(-2s), "-2s");
  for (const char* text : {"1d2h3m4s5ms", "5m", "1h30m"}) {
    EXPECT_EQ(format_duration(*parse_duration(text)), text);
  }
}

TEST(HostPort, ParsesNamesAndIpv6) {
  std::string why;
  auto hp = detail::parse_host_port("127.0.0.1:9780", true, &why);
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 9780);
  hp = detail::parse_host_port("[::1]:9780", true, &why);
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "::1");
  hp = detail::parse_host_port("broker-1.example.com", false, &why);
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->port, 0);
  for (const char* bad : {"", ":9780", "h:0", "h:65536", "h:x", "::1:9780", "[::1", "h h:1"}) {
    EXPECT_FALSE(detail::parse_host_port(bad, true, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  EXPECT_FALSE(detail::parse_host_port("host", true, &why));
  EXPECT_NE(why.find("port is missing"), std::string::npos);
}

TEST(AmqpUri, ParsesUserPasswordHostPortVhost) {
  std::string why;
  auto u = detail::parse_amqp_uri("amqps://mqdr:s3cr3t@10.0.3.10:5671/orders", &why);
  ASSERT_TRUE(u) << why;
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->user, "mqdr");
  EXPECT_EQ(u->password, "s3cr3t");
  EXPECT_EQ(u->host, "10.0.3.10");
  EXPECT_EQ(u->port, 5671);
  EXPECT_EQ(u->vhost, "orders");
  EXPECT_EQ(u->without_password, "amqps://mqdr@10.0.3.10:5671/orders");
}

TEST(AmqpUri, DefaultsAndDecoding) {
  struct Row {
    const char* uri;
    int port;
    const char* vhost;
    const char* user;
    const char* password;
    const char* stripped;
  };
  const Row rows[] = {
      {"amqp://h", 5672, "/", "", "", "amqp://h"},
      {"amqps://h", 5671, "/", "", "", "amqps://h"},
      {"amqp://h/", 5672, "/", "", "", "amqp://h/"},
      {"amqp://h/%2F", 5672, "/", "", "", "amqp://h/%2F"},
      {"amqp://h/a%20b", 5672, "a b", "", "", "amqp://h/a%20b"},
      {"amqp://u%40x:p%3Aw%2F@h:1234/v", 1234, "v", "u@x", "p:w/", "amqp://u%40x@h:1234/v"},
      {"amqp://u:@h/v", 5672, "v", "u", "", "amqp://u@h/v"},
      {"AMQP://[::1]:5673/v", 5673, "v", "", "", "AMQP://[::1]:5673/v"},
  };
  for (const auto& r : rows) {
    std::string why;
    auto u = detail::parse_amqp_uri(r.uri, &why);
    ASSERT_TRUE(u) << r.uri << ": " << why;
    EXPECT_EQ(u->port, r.port) << r.uri;
    EXPECT_EQ(u->vhost, r.vhost) << r.uri;
    EXPECT_EQ(u->user, r.user) << r.uri;
    EXPECT_EQ(u->password, r.password) << r.uri;
    EXPECT_EQ(u->without_password, r.stripped) << r.uri;
  }
}

TEST(AmqpUri, RefusesWithAReasonThatDoesNotRepeatTheUri) {
  for (const char* bad : {"http://h", "amqp://", "amqp://h:0", "amqp://h:99999", "amqp://h/a/b",
                          "amqp://h?heartbeat=10", "amqp://h/%zz", "amqp://h#x", "h:5672",
                          "amqp://u:pa%ss@h"}) {
    std::string why;
    EXPECT_FALSE(detail::parse_amqp_uri(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
    EXPECT_EQ(why.find(bad), std::string::npos) << why;
  }
}

TEST(Url, SplitsTheParts) {
  std::string why;
  auto u = detail::parse_url("https://user:pw@mq.example.com:15671/api?x=1#f", &why);
  ASSERT_TRUE(u) << why;
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->user, "user");
  EXPECT_EQ(u->password, "pw");
  EXPECT_EQ(u->host, "mq.example.com");
  EXPECT_EQ(u->port, 15671);
  EXPECT_EQ(u->path, "/api");
  EXPECT_EQ(u->query, "x=1");
  EXPECT_TRUE(u->has_fragment);
  EXPECT_EQ(u->without_password, "https://user@mq.example.com:15671/api?x=1#f");
}

TEST(Hints, EditDistanceCountsTranspositionsAsOne) {
  EXPECT_EQ(detail::edit_distance("topics", "topcis"), 1U);
  EXPECT_EQ(detail::edit_distance("topics", "Topics"), 0U);
  EXPECT_EQ(detail::edit_distance("", "abc"), 3U);
  EXPECT_EQ(detail::edit_distance("kitten", "sitting"), 3U);
}

TEST(Hints, ClosestSuggestsOnlyLikelyMisspellings) {
  std::vector<std::string> keys = {"name", "source", "target", "topics", "exclude_topics"};
  EXPECT_EQ(detail::closest("topcis", keys), "topics");
  EXPECT_EQ(detail::closest("sorce", keys), "source");
  EXPECT_EQ(detail::closest("excluded_topics", keys), "exclude_topics");
  EXPECT_EQ(detail::closest("colour", keys), "");
  EXPECT_EQ(detail::closest("x", keys), "");
}

TEST(Regex, CompilesOrSaysWhy) {
  EXPECT_EQ(detail::check_regex("orders\\..*"), "");
  EXPECT_EQ(detail::check_regex("[a-z]+(-[0-9]+)?"), "");
  EXPECT_EQ(detail::check_regex("orders("), "unbalanced parentheses");
  EXPECT_NE(detail::check_regex("[z-a]"), "");
  EXPECT_NE(detail::check_regex("*x"), "");
  EXPECT_NE(detail::check_regex(""), "");
  EXPECT_NE(detail::check_regex(std::string(60, '(') + "a" + std::string(60, ')')), "");
  EXPECT_NE(detail::check_regex(std::string(1001, 'a')), "");
}

TEST(Names, LettersDigitsDashUnderscore) {
  EXPECT_TRUE(detail::valid_name("kafka-east_1"));
  EXPECT_TRUE(detail::valid_name("1st"));
  EXPECT_FALSE(detail::valid_name(""));
  EXPECT_FALSE(detail::valid_name("-x"));
  EXPECT_FALSE(detail::valid_name("a.b"));
  EXPECT_FALSE(detail::valid_name("a b"));
  EXPECT_FALSE(detail::valid_name(std::string(65, 'a')));
}

}  // namespace
}  // namespace mqdr::config
