// Broker outages under a running exchange mirror: the target node stopped for 20 s (confirms
// resume, zero lost), then the source node restarted (capture resumes, zero lost). Nodes are
// stopped with `rabbitmqctl stop_app` through the harness and always started again.

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "rabbit_fixture.hpp"
#include "rabbitmq/capture.hpp"

namespace mqdr::test::rabbit {
namespace {

int harness(const std::string& args) {
  const std::string cmd =
      std::string(MQDR_SOURCE_DIR) + "/tests/harness/harness.sh " + args + " >/dev/null 2>&1";
  return std::system(cmd.c_str());
}

// Starts the node's app again whatever happens in the test.
struct NodeGuard {
  std::string node;
  bool stopped = false;
  void stop() {
    ASSERT_EQ(harness("rabbitmqctl " + node + " stop_app"), 0);
    stopped = true;
  }
  void start() {
    if (!stopped) return;
    ASSERT_EQ(harness("rabbitmqctl " + node + " start_app"), 0);
    stopped = false;
    ASSERT_EQ(harness("up rabbit-" + node), 0);  // waits until really ready
  }
  ~NodeGuard() {
    if (stopped) {
      harness("rabbitmqctl " + node + " start_app");
      harness("up rabbit-" + node);
    }
  }
};

void publish_range(Client& c, const std::string& ex, int from, int to) {
  amqp_basic_properties_t p;
  std::memset(&p, 0, sizeof(p));
  p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  p.delivery_mode = 2;
  for (int i = from; i < to; ++i) c.publish(ex, "k", p, std::to_string(i));
}

void expect_all_once_or_more(Client& b, const std::string& q, int n) {
  const auto total = b.depth(q);
  auto got = b.take(q, static_cast<std::size_t>(total), 120s);
  ASSERT_EQ(static_cast<std::int64_t>(got.size()), total);
  std::vector<int> seen(n, 0);
  for (const auto& m : got) ++seen[std::stoi(m.body)];
  int lost = 0, dup = 0;
  for (int i = 0; i < n; ++i) {
    lost += seen[i] == 0;
    dup += seen[i] > 1 ? seen[i] - 1 : 0;
  }
  std::cerr << q << ": lost " << lost << ", duplicates " << dup << "\n";
  EXPECT_EQ(lost, 0);
}

TEST(RabbitOutage, TargetStoppedThenSourceRestarted) {
  constexpr int kBatch = 5000;
  const std::string sfx = suffix();
  const std::string mirror = "it-outage-" + sfx;
  const std::string ex = "it.outage." + sfx;
  const std::string q = "it.outage.q." + sfx;
  {
    Client a(node_a());
    a.exchange(ex, "direct");
    a.queue(q);
    a.bind(q, ex, "k");
  }
  auto ctx = mirror_context(mirror, node_a(), node_b());
  ctx.mirror.rabbitmq.exchanges = {ex};
  ctx.mirror.rabbitmq.refresh_interval = Duration(2000);
  rabbitmq::WorkerOptions wo;
  wo.max_backoff = Duration(2000);
  wo.trim_standby = false;  // the primary queue is not consumed here anyway
  RunningWorker worker(ctx, wo);
  {
    Client a(node_a());
    Client b(node_b());
    ASSERT_TRUE(eventually(
        [&] { return a.consumers(rabbitmq::capture_queue_name(mirror, ex)) == 1 && b.depth(q) == 0; },
        60s));
    publish_range(a, ex, 0, kBatch);
    ASSERT_TRUE(eventually([&] { return b.depth(q) >= kBatch / 5; }, 120s));
  }

  // 1. Target down for 20 s while the source keeps receiving.
  {
    NodeGuard target{"b"};
    target.stop();
    Client a(node_a());
    publish_range(a, ex, kBatch, 2 * kBatch);
    ASSERT_TRUE(eventually([&] { return worker.stats().state == "backoff"; }, 60s));
    std::this_thread::sleep_for(20s);  // the outage itself, not a synchronisation
    target.start();
  }
  {
    Client a(node_a());
    Client b(node_b());
    ASSERT_TRUE(eventually([&] { return b.depth(q) >= 2 * kBatch; }, 180s))
        << "target at " << b.depth(q) << ": " << worker.stats().last_error;
    EXPECT_EQ(a.depth(q), 2 * kBatch);
  }

  // 2. Source restarted: its durable capture queue kept what arrived; capture resumes.
  {
    Client a(node_a());
    publish_range(a, ex, 2 * kBatch, 3 * kBatch);
    ASSERT_TRUE(eventually([&] { return a.depth(q) == 3 * kBatch; }, 60s));
  }
  {
    NodeGuard source{"a"};
    source.stop();
    ASSERT_TRUE(eventually([&] { return worker.stats().state == "backoff"; }, 60s));
    source.start();
  }
  {
    Client a(node_a());
    publish_range(a, ex, 3 * kBatch, 4 * kBatch);
    Client b(node_b());
    ASSERT_TRUE(eventually([&] { return b.depth(q) >= 4 * kBatch; }, 180s))
        << "target at " << b.depth(q) << ": " << worker.stats().last_error;
    EXPECT_EQ(worker.stats().state, "running");
    EXPECT_TRUE(worker.stop().is_ok());
    EXPECT_EQ(a.depth(q), 4 * kBatch) << "the primary's queue lost messages";
    expect_all_once_or_more(b, q, 4 * kBatch);
    a.delete_queue(q);
    a.delete_queue(rabbitmq::capture_queue_name(mirror, ex));
    a.delete_exchange(ex);
    b.delete_queue(q);
    b.delete_exchange(ex);
  }
}

}  // namespace
}  // namespace mqdr::test::rabbit
