// Queue shovel: messages are moved out of a source queue into the same-named queue on the target
// (or into a configured exchange there), in order, acked on the source only after the target
// confirmed them.

#include <gtest/gtest.h>

#include <cstring>

#include "rabbit_fixture.hpp"

namespace mqdr::test::rabbit {
namespace {

void publish_n(Client& c, const std::string& queue, int n) {
  amqp_basic_properties_t p;
  std::memset(&p, 0, sizeof(p));
  p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  p.delivery_mode = 2;
  p.content_type = amqp_cstring_bytes("text/plain");
  for (int i = 0; i < n; ++i) c.publish("", queue, p, std::to_string(i));
}

TEST(RabbitShovel, MovesQueueIntoSameNamedQueue) {
  constexpr int kMessages = 5000;
  const std::string sfx = suffix();
  const std::string q = "it.shovel." + sfx;
  Client a(node_a());
  Client b(node_b());
  a.queue(q);
  publish_n(a, q, kMessages);
  ASSERT_TRUE(eventually([&] { return a.depth(q) == kMessages; }, 60s));

  auto ctx = mirror_context("it-shovel-" + sfx, node_a(), node_b());
  ctx.mirror.rabbitmq.queues = {q};
  RunningWorker worker(ctx);
  ASSERT_TRUE(eventually([&] { return a.depth(q) == 0 && b.depth(q) == kMessages; }, 120s))
      << worker.stats().last_error << " a=" << a.depth(q) << " b=" << b.depth(q);
  EXPECT_TRUE(worker.stop().is_ok());
  auto got = b.take(q, kMessages);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(got[i].body, std::to_string(i));
    ASSERT_EQ(plain_attributes(got[i].record),
              (std::vector<std::pair<std::string, std::string>>{{"amqp.content_type", "text/plain"},
                                                                 {"amqp.delivery_mode", "2"}}));
  }
  a.delete_queue(q);
  b.delete_queue(q);
}

TEST(RabbitShovel, MovesQueueIntoConfiguredExchange) {
  constexpr int kMessages = 1000;
  const std::string sfx = suffix();
  const std::string q = "it.shovel.src." + sfx;
  const std::string ex = "it.shovel.ex." + sfx;
  const std::string dst = "it.shovel.dst." + sfx;
  Client a(node_a());
  Client b(node_b());
  a.queue(q);
  b.exchange(ex, "fanout");
  b.queue(dst);
  b.bind(dst, ex, "");
  publish_n(a, q, kMessages);
  ASSERT_TRUE(eventually([&] { return a.depth(q) == kMessages; }, 60s));

  auto ctx = mirror_context("it-shovel-ex-" + sfx, node_a(), node_b());
  ctx.mirror.rabbitmq.queues = {q};
  ctx.mirror.rabbitmq.shovel_exchange = ex;
  ctx.mirror.rabbitmq.sync_definitions = false;
  RunningWorker worker(ctx);
  ASSERT_TRUE(eventually([&] { return a.depth(q) == 0 && b.depth(dst) == kMessages; }, 120s))
      << worker.stats().last_error;
  EXPECT_TRUE(worker.stop().is_ok());
  auto got = b.take(dst, kMessages);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) ASSERT_EQ(got[i].body, std::to_string(i));
  a.delete_queue(q);
  b.delete_queue(dst);
  b.delete_exchange(ex);
}

}  // namespace
}  // namespace mqdr::test::rabbit
