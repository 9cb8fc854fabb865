// MirrorOps of a RabbitMQ mirror: lag, unreplicated and verify see what the capture queue still
// holds; final_sync applies definitions.

#include <gtest/gtest.h>

#include <cstring>

#include "rabbit_fixture.hpp"
#include "rabbitmq/capture.hpp"
#include "rabbitmq/ops.hpp"

namespace mqdr::test::rabbit {
namespace {

TEST(RabbitOps, LagUnreplicatedAndVerifyFollowTheCaptureQueue) {
  constexpr int kFirst = 2000;
  constexpr int kPending = 300;
  const std::string sfx = suffix();
  const std::string mirror = "it-ops-" + sfx;
  const std::string ex = "it.ops." + sfx;
  const std::string q = "it.ops.q." + sfx;
  Client a(node_a());
  Client b(node_b());
  a.exchange(ex, "topic");
  a.queue(q);
  a.bind(q, ex, "#");
  auto ctx = mirror_context(mirror, node_a(), node_b());
  ctx.mirror.rabbitmq.exchanges = {ex};
  auto ops = rabbitmq::make_mirror_ops(ctx);
  ASSERT_TRUE(ops->final_sync(Duration(30000)).is_ok());
  EXPECT_EQ(b.depth(q), 0) << "final_sync creates the queue on the target";

  amqp_basic_properties_t p;
  std::memset(&p, 0, sizeof(p));
  {
    RunningWorker worker(ctx);
    const std::string capture = rabbitmq::capture_queue_name(mirror, ex);
    ASSERT_TRUE(eventually([&] { return a.consumers(capture) == 1; }, 60s));
    for (int i = 0; i < kFirst; ++i) a.publish(ex, "k", p, std::to_string(i));
    ASSERT_TRUE(eventually([&] { return b.depth(q) == kFirst; }, 120s));
    ASSERT_TRUE(eventually([&] { return a.depth(capture) == 0; }, 30s));
    EXPECT_TRUE(worker.stop().is_ok());
  }
  Lag lag = ops->lag(Duration(10000));
  EXPECT_EQ(lag.records, 0);
  EXPECT_EQ(lag.seconds, 0);
  auto v = ops->verify(Duration(30000));
  EXPECT_TRUE(v.equal) << v.first_difference;

  // The mirror is stopped: what arrives now waits in the capture queue.
  for (int i = 0; i < kPending; ++i) a.publish(ex, "k", p, "late");
  ASSERT_TRUE(eventually([&] { return a.depth(q) == kFirst + kPending; }, 30s));
  lag = ops->lag(Duration(10000));
  EXPECT_EQ(lag.records, kPending);
  auto un = ops->unreplicated(Duration(10000));
  EXPECT_EQ(un.value("messages", std::int64_t{-1}), kPending) << un.dump();
  v = ops->verify(Duration(30000));
  EXPECT_FALSE(v.equal);
  EXPECT_NE(v.first_difference.find("unmirrored"), std::string::npos) << v.first_difference;

  a.delete_queue(q);
  a.delete_queue(rabbitmq::capture_queue_name(mirror, ex));
  a.delete_exchange(ex);
  b.delete_queue(q);
  b.delete_exchange(ex);
}

}  // namespace
}  // namespace mqdr::test::rabbit
