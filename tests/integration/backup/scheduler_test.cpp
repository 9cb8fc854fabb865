// The backup scheduler inside a real `mqdr run`: a Kafka plan taken on its schedule (a full
// backup, then incrementals continuing it, fulls again), retention deleting old chains while
// every backup left on disk keeps its whole chain, the `backups` status section and the
// mqdr_backup_* metrics on the admin API, and a clean stop.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <set>

#include <nlohmann/json.hpp>

#include "backup/manifest.hpp"
#include "tests/integration/backup/backup_fixture.hpp"
#include "tests/integration/kafka/kafka_fixture.hpp"

namespace mqdr::backup::test {
namespace {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

TEST(BackupScheduler, RunsPlansOnScheduleKeepsChainsAndReports) {
  const auto& ep = mqdr::test::Endpoints::get();
  MQDR_REQUIRE_BROKER(ep.kafka_a);
  Scratch s("sched");
  const std::string topic = unique_name("bk-sched");
  kafka::test::Admin admin(kafka::test::cluster("ka", ep.kafka_a));
  admin.create(topic, 2);
  kafka::test::produce(ep.kafka_a, {kafka::test::rec(topic, 0, "k", "v"), kafka::test::rec(topic, 1, "k", "v")});
  const int port = free_port();
  {
    std::ofstream out(s.config());
    out << "version: 1\ndaemon:\n  state_dir: " << (s.dir() / "state").string() << "\n"
        << "  admin: { listen: '127.0.0.1:" << port << "' }\n"
        << "clusters:\n  ka: { kind: kafka, bootstrap_servers: '" << ep.kafka_a << "' }\n"
        << "backups:\n  - name: sched\n    cluster: ka\n    topics: ['" << topic << "']\n"
        << "    dir: " << s.backups().string() << "\n"
        << "    full_every: 4s\n    incremental_every: 1s\n    retention: 3s\n";
  }
  Child daemon({"run", "-c", s.config().string()}, s.dir() / "daemon.log");
  const fs::path plan_dir = s.backups() / "sched";
  std::set<std::string> seen;
  std::string broken;
  // Until a second full exists and the first chain was deleted by retention.
  const bool done = wait_for([&] {
    if (!daemon.running()) return true;
    const auto list = list_backups(plan_dir);
    for (const auto& b : list) {
      seen.insert(b.name);
      try {
        chain_of(list, b.name);
      } catch (const std::exception& e) {
        broken = e.what();
        return true;
      }
    }
    int fulls = 0;
    for (const auto& n : seen) fulls += n.ends_with("-full") ? 1 : 0;
    return fulls >= 2 && !list.empty() && list.front().name != *seen.begin();
  }, 120s, 100ms);
  ASSERT_TRUE(daemon.running()) << daemon.output();
  ASSERT_TRUE(broken.empty()) << "a retained backup lost part of its chain: " << broken;
  ASSERT_TRUE(done) << "seen: " << seen.size() << "\n" << daemon.output();
  EXPECT_TRUE(seen.begin()->ends_with("-full"));
  int incrementals = 0;
  for (const auto& n : seen) incrementals += n.ends_with("-incremental") ? 1 : 0;
  EXPECT_GE(incrementals, 1);

  httplib::Client http("127.0.0.1", port);
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics) << "admin API not answering";
  EXPECT_NE(metrics->body.find("mqdr_backup_last_success_timestamp_seconds{plan=\"sched\"}"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("mqdr_backup_failures_total{plan=\"sched\"} 0"), std::string::npos);
  auto status = http.Get("/v1/status");
  ASSERT_TRUE(status);
  const auto j = nlohmann::json::parse(status->body);
  ASSERT_TRUE(j.contains("backups")) << status->body;
  ASSERT_EQ(j["backups"].size(), 1u);
  EXPECT_EQ(j["backups"][0]["plan"], "sched");
  EXPECT_NE(j["backups"][0]["last_backup"], "");
  EXPECT_EQ(j["backups"][0]["last_error"], "");

  EXPECT_EQ(daemon.terminate(60s), 0) << daemon.output();
}

}  // namespace
}  // namespace mqdr::backup::test
