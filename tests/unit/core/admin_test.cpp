#include "mqdr/admin.hpp"

#include <httplib.h>
#include <gtest/gtest.h>

namespace mqdr {
namespace {

AdminConfig config_with_token(const std::string& token) {
  AdminConfig c;
  c.listen = "127.0.0.1:0";
  c.token = Secret(token);
  return c;
}

TEST(TokenMatches, ComparesWholeTokens) {
  EXPECT_TRUE(token_matches("s3cret", "s3cret"));
  EXPECT_FALSE(token_matches("s3cre", "s3cret"));
  EXPECT_FALSE(token_matches("s3cretX", "s3cret"));
  EXPECT_FALSE(token_matches("", ""));  // no token configured never matches
}

TEST(Render, PrometheusTextFormat) {
  MetricFamily f{"mqdr_mirror_records_total", "Records", MetricFamily::Type::counter,
                 {{{{"mirror", "orders"}}, 42}}};
  auto text = render_prometheus({f});
  EXPECT_NE(text.find("# TYPE mqdr_mirror_records_total counter"), std::string::npos);
  EXPECT_NE(text.find("mqdr_mirror_records_total{mirror=\"orders\"} 42"), std::string::npos);
}

class AdminServerTest : public ::testing::Test {
 protected:
  void start(const std::string& token) {
    server = std::make_unique<AdminServer>(
        config_with_token(token),
        AdminServer::Handlers{[this] { return ready; },
                              [] { return nlohmann::json{{"mirrors", nlohmann::json::array()}}; },
                              [] {
                                return std::vector<MetricFamily>{
                                    {"mqdr_build_info", "b", MetricFamily::Type::gauge,
                                     {{{{"version", "x"}}, 1}}}};
                              }});
    server->add_post(R"(/v1/failover/([^/]+))",
                     [this](const std::vector<std::string>& caps,
                            const std::map<std::string, std::string>& query, const nlohmann::json&) {
                       last_group = caps.at(0);
                       auto it = query.find("force");
                       forced = it != query.end() && it->second == "true";
                       return HttpAnswer{202, {{"group", caps.at(0)}}};
                     });
    server->start();
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
  }
  bool ready = false;
  std::string last_group;
  bool forced = false;
  std::unique_ptr<AdminServer> server;
  std::unique_ptr<httplib::Client> client;
};

TEST_F(AdminServerTest, HealthReadinessStatusMetrics) {
  start("tok");
  EXPECT_EQ(client->Get("/healthz")->status, 200);
  EXPECT_EQ(client->Get("/readyz")->status, 503);
  ready = true;
  EXPECT_EQ(client->Get("/readyz")->status, 200);
  auto status = client->Get("/v1/status");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->status, 200);
  EXPECT_TRUE(nlohmann::json::parse(status->body).contains("mirrors"));
  auto metrics = client->Get("/metrics");
  EXPECT_NE(metrics->body.find("mqdr_build_info{version=\"x\"} 1"), std::string::npos);
  EXPECT_EQ(client->Get("/nope")->status, 404);
}

TEST_F(AdminServerTest, PostNeedsTheBearerToken) {
  start("the-token");
  EXPECT_EQ(client->Post("/v1/failover/east-west", "", "application/json")->status, 401);
  httplib::Headers wrong{{"Authorization", "Bearer nope"}};
  EXPECT_EQ(client->Post("/v1/failover/east-west", wrong, "", "application/json")->status, 401);
  EXPECT_TRUE(last_group.empty());
  httplib::Headers right{{"Authorization", "Bearer the-token"}};
  auto res = client->Post("/v1/failover/east-west?force=true", right, "", "application/json");
  EXPECT_EQ(res->status, 202);
  EXPECT_EQ(last_group, "east-west");
  EXPECT_TRUE(forced);
  // The answer never echoes the token.
  EXPECT_EQ(res->body.find("the-token"), std::string::npos);
}

TEST_F(AdminServerTest, WithoutAConfiguredTokenEveryPostIsRefused) {
  start("");
  httplib::Headers h{{"Authorization", "Bearer "}};
  EXPECT_EQ(client->Post("/v1/failover/g", h, "", "application/json")->status, 403);
}

TEST(AdminServer, BindFailureNamesTheAddress) {
  AdminServer a(config_with_token("t"), {});
  a.start();
  AdminConfig c = config_with_token("t");
  c.listen = "127.0.0.1:" + std::to_string(a.port());
  AdminServer b(c, {});
  try {
    b.start();
    FAIL() << "second bind succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(c.listen), std::string::npos);
  }
}

}  // namespace
}  // namespace mqdr
