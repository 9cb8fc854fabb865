// kill -9 of the mirror process in the middle of an exchange mirror, several times, then a clean
// run to the end: zero messages lost on the target, duplicates bounded by the prefetch window
// per kill (what was published to the target but not yet acked on the source is delivered
// again), and the primary's own queue untouched.

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <random>

#include "mqdr_process.hpp"
#include "rabbit_fixture.hpp"
#include "rabbitmq/capture.hpp"

namespace mqdr::test::rabbit {
namespace {

std::filesystem::path write_config(const std::filesystem::path& dir, const std::string& mirror,
                                   const std::string& exchange, int prefetch) {
  std::random_device rd;
  const int admin_port = 20000 + static_cast<int>(rd() % 20000);
  const auto a = node_a();
  const auto b = node_b();
  auto uri = [](const ClusterConfig& c) {
    return fmt::format("amqp://{}:{}@{}:{}/", c.rabbitmq.user, c.rabbitmq.password.reveal(),
                       c.rabbitmq.host, c.rabbitmq.port);
  };
  const auto file = dir / "mqdr.yaml";
  std::ofstream out(file);
  out << fmt::format(R"(version: 1
daemon:
  state_dir: {state}
  admin:
    listen: 127.0.0.1:{port}
  log: {{ level: info, format: text }}
clusters:
  rabbit-a:
    kind: rabbitmq
    uri: {ua}
    management_uri: {ma}
  rabbit-b:
    kind: rabbitmq
    uri: {ub}
    management_uri: {mb}
mirrors:
  - name: {mirror}
    source: rabbit-a
    target: rabbit-b
    exchanges: ['{exchange}']
    sync_definitions: true
    prefetch: {prefetch}
    refresh_interval: 2s
)",
                     fmt::arg("state", (dir / "state").string()), fmt::arg("port", admin_port),
                     fmt::arg("ua", uri(a)), fmt::arg("ma", a.rabbitmq.management_uri),
                     fmt::arg("ub", uri(b)), fmt::arg("mb", b.rabbitmq.management_uri),
                     fmt::arg("mirror", mirror), fmt::arg("exchange", exchange),
                     fmt::arg("prefetch", prefetch));
  return file;
}

// `runner`: true = the rabbit_mirror_runner process (the MirrorWorker alone), false = `mqdr run`.
void kill_test(bool runner) {
  constexpr int kMessages = 30000;
  constexpr int kPrefetch = 200;
  constexpr int kKills = 3;
  const std::string sfx = suffix();
  const std::string mirror = "it-kill-" + sfx;
  const std::string ex = "it.kill." + sfx;
  const std::string q = "it.kill.q." + sfx;
  const auto dir = std::filesystem::temp_directory_path() / ("mqdr-" + mirror);
  std::filesystem::create_directories(dir);

  Client a(node_a());
  Client b(node_b());
  a.exchange(ex, "topic");
  a.queue(q);
  a.bind(q, ex, "#");

  MqdrProcess mqdr(write_config(dir, mirror, ex, kPrefetch), dir / "mqdr.log");
  if (runner) {
    mqdr.with_args({RABBIT_MIRROR_RUNNER, mirror, ex, std::to_string(kPrefetch),
                    (dir / "state").string()});
  }
  mqdr.start();
  const std::string capture = rabbitmq::capture_queue_name(mirror, ex);
  ASSERT_TRUE(eventually([&] { return a.consumers(capture) == 1 && b.depth(q) == 0; }, 120s))
      << mqdr.log_text();

  amqp_basic_properties_t p;
  std::memset(&p, 0, sizeof(p));
  p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
  p.delivery_mode = 2;
  for (int i = 0; i < kMessages; ++i) {
    const std::string id = std::to_string(i);
    p.message_id = bytes_of(id);
    a.publish(ex, fmt::format("k.{}", i % 10), p, id);
  }

  // Kill at about 1/4, 2/4 and 3/4 of the way, restarting each time.
  for (int k = 1; k <= kKills; ++k) {
    const std::int64_t mark = kMessages * k / (kKills + 1);
    ASSERT_TRUE(eventually([&] { return b.depth(q) >= mark; }, 300s))
        << "kill " << k << ": target at " << b.depth(q) << "\n" << mqdr.log_text();
    mqdr.kill9();
    mqdr.start();
  }
  ASSERT_TRUE(eventually([&] { return b.depth(q) >= kMessages && a.depth(capture) == 0; }, 300s))
      << "target at " << b.depth(q) << "\n" << mqdr.log_text();
  // Let what is in flight settle, then stop cleanly.
  ASSERT_TRUE(eventually([&] { return a.counts(capture) && a.depth(capture) == 0; }, 30s));
  EXPECT_EQ(mqdr.terminate(60s), 0) << mqdr.log_text();

  // The primary's queue is untouched.
  EXPECT_EQ(a.depth(q), kMessages);
  const std::int64_t total = b.depth(q);
  auto got = b.take(q, static_cast<std::size_t>(total), 120s);
  ASSERT_EQ(static_cast<std::int64_t>(got.size()), total);
  std::vector<int> seen(kMessages, 0);
  for (const auto& m : got) ++seen[std::stoi(m.body)];
  int lost = 0, duplicates = 0;
  for (int i = 0; i < kMessages; ++i) {
    if (seen[i] == 0) ++lost;
    if (seen[i] > 1) duplicates += seen[i] - 1;
  }
  std::cerr << "kills " << kKills << ", lost " << lost << ", duplicates " << duplicates << "\n";
  EXPECT_EQ(lost, 0);
  EXPECT_LE(duplicates, kKills * kPrefetch);

  a.delete_queue(q);
  a.delete_queue(capture);
  a.delete_exchange(ex);
  b.delete_queue(q);
  b.delete_exchange(ex);
  std::filesystem::remove_all(dir);
}

TEST(RabbitKill9, WorkerProcessZeroLossDuplicatesBoundedByPrefetch) { kill_test(true); }

TEST(RabbitKill9, MqdrRunZeroLossDuplicatesBoundedByPrefetch) { kill_test(false); }

}  // namespace
}  // namespace mqdr::test::rabbit
