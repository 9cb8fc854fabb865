// Failover of a Kafka pair on the real harness brokers: the primary's broker is killed with
// kill -9, the controller (with real Kafka mirror workers under a Supervisor, real probes and
// mirror ops) fails over by itself, the clients file points at the standby, and everything that
// was replicated before the kill is on the standby. Then the primary comes back, reverse
// replication carries what was written on the standby during the outage, and a failback puts the
// clients on the primary again with nothing lost.

#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "mqdr/failover.hpp"
#include "mqdr/kafka.hpp"
#include "mqdr/supervisor.hpp"
#include "tests/harness/endpoints.hpp"
#include "tests/integration/kafka/kafka_fixture.hpp"

namespace mqdr {
namespace {

using namespace std::chrono_literals;
namespace kt = mqdr::kafka::test;

// What the daemon does for the controller: mirror workers under a Supervisor.
struct Workers {
  BrokerRegistry registry;
  Supervisor supervisor;
  std::shared_ptr<const Config> config;
  std::filesystem::path state_dir;

  MirrorControl control() {
    MirrorControl c;
    c.start = [this](const MirrorConfig& m) {
      const auto* kind = registry.find(m.kind);
      auto stats = std::make_shared<WorkerStats>(m.name, "kafka");
      MirrorContext ctx{config, m, config->clusters.at(m.source), config->clusters.at(m.target),
                        stats, state_dir / "mirrors" / m.name};
      std::filesystem::create_directories(ctx.state_dir);
      supervisor.add(m.name, [kind, ctx] { return kind->make_mirror(ctx); }, stats);
    };
    c.stop = [this](const std::string& name) { return supervisor.remove(name, 30s); };
    c.stats = [this](const std::string& name) -> std::optional<StatsSnapshot> {
      auto s = supervisor.stats(name);
      if (!s) return std::nullopt;
      return s->snapshot();
    };
    return c;
  }
};

std::set<std::string> keys(const std::vector<Record>& records) {
  std::set<std::string> out;
  for (const auto& r : records) {
    if (r.key) out.insert(*r.key);
  }
  return out;
}

std::vector<Record> batch(const std::string& topic, const std::string& prefix, int n) {
  std::vector<Record> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(kt::rec(topic, i % 2, prefix + std::to_string(i), std::string("v") + std::to_string(i)));
  }
  return out;
}

// Restarts kafka-a whatever happens to the test.
struct RestartPrimary {
  ~RestartPrimary() {
    if (armed) mqdr::test::harness("up kafka-a");
  }
  bool armed = false;
};

TEST(FailoverKafka, KillNineOfThePrimaryFailsOverAndBackWithoutLoss) {
  const auto& ep = mqdr::test::Endpoints::get();
  MQDR_REQUIRE_BROKER(ep.kafka_a);
  MQDR_REQUIRE_BROKER(ep.kafka_b);

  char tmpl[] = "/tmp/mqdr-failover-it-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::filesystem::path dir = tmpl;
  const std::string topic = kt::unique("fo-orders");

  auto config = std::make_shared<Config>();
  config->daemon.state_dir = dir;
  config->clusters["kafka-a"] = kt::cluster("kafka-a", ep.kafka_a);
  config->clusters["kafka-b"] = kt::cluster("kafka-b", ep.kafka_b);
  MirrorConfig m;
  m.name = kt::unique("fo-mirror");
  m.source = "kafka-a";
  m.target = "kafka-b";
  m.kind = ClusterKind::kafka;
  m.kafka.topics = {topic};
  m.kafka.refresh_interval = 2s;
  config->mirrors.push_back(m);
  FailoverGroupConfig g;
  g.name = "it";
  g.pairs = {{"kafka-a", "kafka-b"}};
  g.mode = FailoverMode::automatic;
  g.health = {1s, 2s, 3, 2};
  g.max_lag = 1h;
  g.hold_down = 1h;
  g.drain_timeout = 10s;
  g.clients.file = dir / "clients.json";
  config->failover.push_back(g);

  kt::Admin(config->clusters["kafka-a"]).create(topic, 2);

  Workers w;
  kafka::register_kind(w.registry);
  w.config = config;
  w.state_dir = dir;
  FailoverController ctl(config, w.registry, w.control(), dir);
  ASSERT_TRUE(ctl.should_run(m.name));
  w.control().start(m);
  ctl.start();

  // Replicated before the kill.
  kt::produce(ep.kafka_a, batch(topic, "a", 2000));
  kt::Admin admin_b(config->clusters["kafka-b"]);
  ASSERT_TRUE(kt::wait_until([&] { return admin_b.total_end(topic) >= 2000; }, 120s))
      << "mirror did not copy the records";

  RestartPrimary restart;
  restart.armed = true;
  ASSERT_EQ(mqdr::test::harness("kill9 kafka-a"), 0);
  ASSERT_TRUE(ctl.wait_for_state("it", "failed_over", 120s)) << ctl.status().dump(2);

  std::ifstream in(g.clients.file);
  auto clients = nlohmann::json::parse(in);
  EXPECT_EQ(clients["active"], "standby");
  EXPECT_EQ(clients["clusters"]["kafka-a"]["active"], "kafka-b");
  EXPECT_EQ(clients["clusters"]["kafka-a"]["bootstrap_servers"], ep.kafka_b);
  auto st = ctl.status()[0];
  EXPECT_TRUE(st["last_switch"]["automatic"]);
  std::printf("failover summary: %s\n", st["last_switch"]["summary"].dump().c_str());

  // A consumer on the standby finds everything that was replicated.
  auto on_b = keys(kt::read_all(ep.kafka_b, topic));
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(on_b.count("a" + std::to_string(i))) << i;

  // Written on the standby during the outage.
  kt::produce(ep.kafka_b, batch(topic, "b", 300));

  ASSERT_EQ(mqdr::test::harness("up kafka-a"), 0);
  restart.armed = false;
  ASSERT_TRUE(kt::wait_until([&] { return ctl.status()[0]["reverse_replication"] == true; }, 120s))
      << ctl.status().dump(2);
  EXPECT_TRUE(kt::wait_until([&] { return w.supervisor.has(m.name + ".reverse"); }, 30s));

  Decision d;
  ASSERT_TRUE(kt::wait_until(
      [&] {
        d = ctl.request_failback("it");
        return d.started();
      },
      120s, 1s))
      << d.reason;
  ASSERT_TRUE(ctl.wait_for_state("it", "replicating", 120s)) << ctl.status().dump(2);
  std::ifstream in2(g.clients.file);
  clients = nlohmann::json::parse(in2);
  EXPECT_EQ(clients["active"], "primary");
  EXPECT_EQ(clients["epoch"], 2);
  EXPECT_TRUE(w.supervisor.has(m.name));
  EXPECT_FALSE(w.supervisor.has(m.name + ".reverse"));

  // Nothing written to the standby during the outage is lost, nor anything from before.
  auto on_a = keys(kt::read_all(ep.kafka_a, topic));
  for (int i = 0; i < 300; ++i) EXPECT_TRUE(on_a.count("b" + std::to_string(i))) << "b" << i;
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(on_a.count("a" + std::to_string(i))) << "a" << i;

  ctl.stop();
  w.supervisor.stop_all(30s);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace mqdr
