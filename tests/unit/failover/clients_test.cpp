// Clients file: formats, keys, no secrets, atomic rewrite.

#include <fstream>
#include <sstream>

#include <sys/stat.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "failover/clients.hpp"
#include "tests/unit/failover/test_dir.hpp"

namespace mqdr::failover {
namespace {

Config sample() {
  Config c;
  auto add = [&](const std::string& name, ClusterKind kind) -> ClusterConfig& {
    auto& cl = c.clusters[name];
    cl.name = name;
    cl.kind = kind;
    return cl;
  };
  add("kafka-east", ClusterKind::kafka).kafka.bootstrap_servers = "10.0.1.10:9092";
  add("kafka-west", ClusterKind::kafka).kafka.bootstrap_servers = "10.1.1.10:9092";
  add("nats-east", ClusterKind::nats).nats.servers = {"nats://10.0.2.10:4222"};
  add("nats-west", ClusterKind::nats).nats.servers = {"nats://app:s3cret@10.1.2.10:4222"};
  auto& re = add("rabbit-east", ClusterKind::rabbitmq);
  re.rabbitmq.uri = "amqps://mqdr@10.0.3.10:5671/orders";
  auto& rw = add("rabbit-west", ClusterKind::rabbitmq);
  rw.rabbitmq.uri = "amqp://mqdr:hunter2@10.1.3.10:5672/orders";
  rw.rabbitmq.management_uri = "http://guest:guest@10.1.3.10:15672";
  FailoverGroupConfig g;
  g.name = "east-west";
  g.pairs = {{"kafka-east", "kafka-west"}, {"nats-east", "nats-west"},
             {"rabbit-east", "rabbit-west"}};
  c.failover.push_back(g);
  return c;
}

ClientsView standby_view() {
  ClientsView v;
  v.epoch = 7;
  v.state = "failed_over";
  v.standby_active = true;
  v.switched_at = std::chrono::system_clock::time_point(std::chrono::seconds(1795574495));
  return v;
}

TEST(FailoverClients, StripUserinfo) {
  EXPECT_EQ(strip_userinfo("amqp://mqdr:pw@10.1.3.10:5672/orders"), "amqp://10.1.3.10:5672/orders");
  EXPECT_EQ(strip_userinfo("amqp://mqdr@h/v"), "amqp://h/v");
  EXPECT_EQ(strip_userinfo("nats://h:4222"), "nats://h:4222");
  EXPECT_EQ(strip_userinfo("http://h:1/p@x"), "http://h:1/p@x");
  EXPECT_EQ(strip_userinfo("h:9092"), "h:9092");
  EXPECT_EQ(strip_userinfo("amqp://u:p@ss@h:1"), "amqp://h:1");
}

TEST(FailoverClients, JsonAsInTheSpec) {
  auto c = sample();
  auto doc = nlohmann::json::parse(render_clients(c, c.failover[0], standby_view()));
  EXPECT_EQ(doc["group"], "east-west");
  EXPECT_EQ(doc["epoch"], 7);
  EXPECT_EQ(doc["state"], "failed_over");
  EXPECT_EQ(doc["active"], "standby");
  EXPECT_EQ(doc["switched_at"], "2026-11-25T02:41:35.000Z");
  EXPECT_EQ(doc["clusters"]["kafka-east"]["active"], "kafka-west");
  EXPECT_EQ(doc["clusters"]["kafka-east"]["kind"], "kafka");
  EXPECT_EQ(doc["clusters"]["kafka-east"]["bootstrap_servers"], "10.1.1.10:9092");
  EXPECT_EQ(doc["clusters"]["nats-east"]["servers"][0], "nats://10.1.2.10:4222");
  EXPECT_EQ(doc["clusters"]["rabbit-east"]["uri"], "amqp://10.1.3.10:5672/orders");
  EXPECT_EQ(doc["clusters"]["rabbit-east"]["management_uri"], "http://10.1.3.10:15672");
  EXPECT_EQ(doc["clusters"].size(), 3u);
}

TEST(FailoverClients, PrimaryActive) {
  auto c = sample();
  ClientsView v;
  v.epoch = 8;
  v.state = "replicating";
  auto doc = nlohmann::json::parse(render_clients(c, c.failover[0], v));
  EXPECT_EQ(doc["active"], "primary");
  EXPECT_EQ(doc["clusters"]["kafka-east"]["active"], "kafka-east");
  EXPECT_EQ(doc["clusters"]["rabbit-east"]["uri"], "amqps://10.0.3.10:5671/orders");
}

TEST(FailoverClients, NoSecretInAnyFormat) {
  auto c = sample();
  for (auto f : {ClientsFormat::json, ClientsFormat::env, ClientsFormat::yaml}) {
    c.failover[0].clients.format = f;
    auto text = render_clients(c, c.failover[0], standby_view());
    for (const char* secret : {"hunter2", "s3cret", "guest", "mqdr@", "app:"}) {
      EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in\n" << text;
    }
  }
}

TEST(FailoverClients, EnvLines) {
  auto c = sample();
  c.failover[0].clients.format = ClientsFormat::env;
  auto text = render_clients(c, c.failover[0], standby_view());
  EXPECT_NE(text.find("\nMQDR_KAFKA_EAST_BOOTSTRAP_SERVERS=10.1.1.10:9092\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\nMQDR_KAFKA_EAST_ACTIVE=kafka-west\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nMQDR_NATS_EAST_SERVERS=nats://10.1.2.10:4222\n"), std::string::npos);
  EXPECT_NE(text.find("\nMQDR_RABBIT_EAST_URI=amqp://10.1.3.10:5672/orders\n"), std::string::npos);
  EXPECT_NE(text.find("\nMQDR_EPOCH=7\n"), std::string::npos);
  EXPECT_NE(text.find("\nMQDR_ACTIVE=standby\n"), std::string::npos);
}

TEST(FailoverClients, YamlIsBlockYaml) {
  auto c = sample();
  c.failover[0].clients.format = ClientsFormat::yaml;
  auto text = render_clients(c, c.failover[0], standby_view());
  EXPECT_NE(text.find("\"epoch\": 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\"clusters\":\n  \"kafka-east\":\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    \"servers\":\n      - \"nats://10.1.2.10:4222\"\n"), std::string::npos)
      << text;
}

TEST(FailoverClients, UnknownClusterIsAnError) {
  auto c = sample();
  c.failover[0].pairs.push_back({"kafka-east", "nowhere"});
  EXPECT_THROW(render_clients(c, c.failover[0], standby_view()), std::runtime_error);
}

TEST(FailoverClients, WriteReplacesTheFileAtomically) {
  test::TempDir dir;
  auto c = sample();
  c.failover[0].clients.file = dir / "clients" / "east-west.json";
  write_clients_file(c, c.failover[0], standby_view());
  auto first = c.failover[0].clients.file;
  auto inode = [](const std::filesystem::path& p) {
    struct stat st {};
    ::stat(p.c_str(), &st);
    return st.st_ino;
  };
  auto before = inode(first);
  ClientsView v;
  v.epoch = 8;
  v.state = "replicating";
  write_clients_file(c, c.failover[0], v);
  std::ifstream in(first);
  auto doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["epoch"], 8);
  EXPECT_NE(inode(first), before);  // a new file renamed over the old one, never rewritten in place
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir / "clients")) {
    ++files;
  }
  EXPECT_EQ(files, 1u);
}

}  // namespace
}  // namespace mqdr::failover
