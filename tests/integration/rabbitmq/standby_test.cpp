// Standby trimming: 10 000 messages mirrored, 90% consumed on the primary, then promotion with
// the primary out of reach: the standby queue keeps exactly the unconsumed 10% plus at most the
// margin, and none of the unconsumed messages is removed. A second part trims continuously while
// the mirror runs.

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iostream>

#include "mqdr/rabbitmq.hpp"
#include "rabbit_fixture.hpp"
#include "rabbitmq/capture.hpp"
#include "rabbitmq/ops.hpp"

namespace mqdr::test::rabbit {
namespace {

constexpr int kMessages = 10000;
constexpr int kConsumed = 9000;
constexpr std::int64_t kMargin = 100;

struct StandbySetup {
  std::string sfx = suffix();
  std::string mirror = "it-standby-" + sfx;
  std::string ex = "it.standby." + sfx;
  std::string q = "it.standby.q." + sfx;
  Client a{node_a()};
  Client b{node_b()};

  StandbySetup() {
    a.exchange(ex, "fanout");
    a.queue(q);
    a.bind(q, ex, "");
  }
  ~StandbySetup() {
    a.delete_queue(q);
    a.delete_queue(rabbitmq::capture_queue_name(mirror, ex));
    a.delete_exchange(ex);
    b.delete_queue(q);
    b.delete_exchange(ex);
  }
  void publish_all() {
    amqp_basic_properties_t p;
    std::memset(&p, 0, sizeof(p));
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = 2;
    for (int i = 0; i < kMessages; ++i) a.publish(ex, "", p, std::to_string(i));
  }
};

TEST(RabbitStandby, PromoteTrimsToUnconsumedPlusMarginWithPrimaryGone) {
  StandbySetup s;
  auto ctx = mirror_context(s.mirror, node_a(), node_b());
  ctx.mirror.rabbitmq.exchanges = {s.ex};
  ctx.mirror.rabbitmq.standby_margin = kMargin;
  rabbitmq::WorkerOptions wo;
  wo.trim_standby = false;  // only sample: promotion does the trimming here
  wo.housekeeping_interval = Duration(500);
  {
    RunningWorker worker(ctx, wo);
    ASSERT_TRUE(eventually(
        [&] {
          return s.a.consumers(rabbitmq::capture_queue_name(s.mirror, s.ex)) == 1 &&
                 s.b.depth(s.q) == 0;
        },
        60s));
    s.publish_all();
    ASSERT_TRUE(eventually([&] { return s.b.depth(s.q) == kMessages; }, 180s))
        << "standby holds " << s.b.depth(s.q) << "; " << worker.stats().last_error;
    // The application consumes 90% on the primary.
    ASSERT_EQ(s.a.take(s.q, kConsumed).size(), static_cast<std::size_t>(kConsumed));
    ASSERT_EQ(s.a.depth(s.q), kMessages - kConsumed);
    // Wait until the worker has observed the new primary depth.
    ASSERT_TRUE(eventually(
        [&] {
          auto d = worker.stats().detail;
          return d.contains("standby") && d["standby"].contains(s.q) &&
                 d["standby"][s.q].value("primary", std::int64_t{-1}) == kMessages - kConsumed;
        },
        60s))
        << worker.stats().detail.dump();
    const Status stopped = worker.stop();
    EXPECT_TRUE(stopped.is_ok()) << stopped.message();
  }
  EXPECT_EQ(s.b.depth(s.q), kMessages) << "nothing is trimmed before promotion in this mode";

  // Promotion with the primary unreachable: the persisted depth decides.
  auto gone = ctx;
  gone.source.rabbitmq.port = 1;
  gone.source.rabbitmq.management_uri = "http://127.0.0.1:1";
  // What promotion decides from, for the failure messages below.
  std::string persisted;
  {
    std::ifstream in(ctx.state_dir / "standby-depths.json");
    persisted.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto ops = rabbitmq::make_mirror_ops(gone);
  const Status promoted = ops->promote(Duration(60000));
  ASSERT_TRUE(promoted.is_ok()) << promoted.message() << "; persisted depths: " << persisted;
  const std::int64_t left = s.b.depth(s.q);
  std::cerr << "standby after promotion: " << left << " (unconsumed " << kMessages - kConsumed
            << ", margin " << kMargin << ")\n";
  EXPECT_GE(left, kMessages - kConsumed) << "persisted depths: " << persisted;
  EXPECT_LE(left, kMessages - kConsumed + kMargin) << "persisted depths: " << persisted;
  auto rest = s.b.take(s.q, static_cast<std::size_t>(left));
  ASSERT_EQ(static_cast<std::int64_t>(rest.size()), left) << "persisted depths: " << persisted;
  // What remains is the tail: every unconsumed message, in order, preceded by <= margin others.
  const int first = std::stoi(rest.front().body);
  EXPECT_EQ(first, kMessages - static_cast<int>(left));
  for (std::size_t i = 0; i < rest.size(); ++i) {
    ASSERT_EQ(std::stoi(rest[i].body), first + static_cast<int>(i));
  }
  std::filesystem::remove_all(ctx.state_dir);
}

TEST(RabbitStandby, ContinuousTrimNeverRemovesUnconsumedMessages) {
  // While messages are still arriving the primary's count can run behind by its credit-flow
  // window (400 per publishing channel): the margin must cover that (docs/rabbitmq.md).
  constexpr std::int64_t kLiveMargin = 1000;
  StandbySetup s;
  auto ctx = mirror_context(s.mirror, node_a(), node_b());
  ctx.mirror.rabbitmq.exchanges = {s.ex};
  ctx.mirror.rabbitmq.standby_margin = kLiveMargin;
  rabbitmq::WorkerOptions wo;
  wo.housekeeping_interval = Duration(500);
  RunningWorker worker(ctx, wo);
  ASSERT_TRUE(eventually(
      [&] {
        return s.a.consumers(rabbitmq::capture_queue_name(s.mirror, s.ex)) == 1 &&
               s.b.depth(s.q) == 0;
      },
      60s));
  s.publish_all();
  ASSERT_TRUE(eventually([&] { return s.b.depth(s.q) == kMessages; }, 180s));
  ASSERT_EQ(s.a.take(s.q, kConsumed).size(), static_cast<std::size_t>(kConsumed));
  ASSERT_TRUE(
      eventually([&] { return s.b.depth(s.q) <= kMessages - kConsumed + kLiveMargin; }, 60s))
      << worker.stats().detail.dump();
  EXPECT_TRUE(worker.stop().is_ok());
  const std::int64_t left = s.b.depth(s.q);
  EXPECT_GE(left, kMessages - kConsumed);
  auto rest = s.b.take(s.q, static_cast<std::size_t>(left));
  ASSERT_EQ(std::stoi(rest.back().body), kMessages - 1);
  ASSERT_EQ(std::stoi(rest.front().body), kMessages - static_cast<int>(left));
  std::filesystem::remove_all(ctx.state_dir);
}

}  // namespace
}  // namespace mqdr::test::rabbit
