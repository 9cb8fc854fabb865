#include "mqdr/pipeline.hpp"

#include <gtest/gtest.h>

#include "tests/unit/core/fakes.hpp"

namespace mqdr {
namespace {

PipelineOptions small_options() {
  PipelineOptions o;
  o.batch_max = 7;
  o.max_inflight_records = 50;
  o.read_wait = Duration(0);
  o.poll_wait = Duration(0);
  o.stop_when_idle = true;
  return o;
}

TEST(Pipeline, MovesEverythingAndCommitsInOrderDespiteShuffledConfirms) {
  test::FakeSource source(1000, 3);
  test::FakeSink sink;
  WorkerStats stats("m", "kafka");
  Pipeline p(source, sink, small_options(), &stats);
  ASSERT_TRUE(p.run(std::stop_token{}).is_ok());
  EXPECT_EQ(sink.written_.size(), 1000u);
  EXPECT_EQ(source.commits_.size(), 1000u);
  EXPECT_FALSE(source.out_of_order_);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(source.committed_["t" + std::to_string(i)], 1000 / 3 + (i < 1000 % 3 ? 1 : 0));
  }
  EXPECT_EQ(stats.snapshot().records_total, 1000u);
  EXPECT_EQ(p.records_committed(), 1000u);
}

TEST(Pipeline, NeverCommitsWhatTheSinkHasNotConfirmed) {
  test::FakeSource source(100);
  test::FakeSink sink;
  sink.hold_ = true;  // the target confirms nothing
  auto o = small_options();
  o.stop_when_idle = false;
  o.drain_timeout = Duration(10);
  Pipeline p(source, sink, o, nullptr);
  bool idle = false;
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(p.step(idle).is_ok());
  EXPECT_TRUE(source.commits_.empty());
  // Backpressure: never more than max_inflight_records read while nothing is confirmed.
  EXPECT_EQ(source.produced_, 50);
  EXPECT_FALSE(p.drain(Duration(10)).is_ok());
  EXPECT_TRUE(source.commits_.empty());
  // The target comes back: everything is confirmed and committed.
  sink.hold_ = false;
  sink.delay_oldest_ = false;
  ASSERT_TRUE(p.drain(Duration(1000)).is_ok());
  EXPECT_EQ(source.commits_.size(), 50u);
}

TEST(Pipeline, FatalSinkErrorStopsWithoutCommittingPastTheRejectedRecord) {
  test::FakeSource source(100);
  test::FakeSink sink;
  sink.fatal_on_value_ = "v42";
  sink.delay_oldest_ = false;
  Pipeline p(source, sink, small_options(), nullptr);
  Status st = p.run(std::stop_token{});
  ASSERT_TRUE(st.is_fatal());
  EXPECT_NE(st.message().find("v42"), std::string::npos);
  ASSERT_FALSE(source.commits_.empty());
  EXPECT_LE(source.committed_["t0"], 42);
  for (const auto& v : source.commits_) EXPECT_NE(v, "v42");
}

TEST(Pipeline, ReadErrorIsReturnedAfterCommittingWhatWasConfirmed) {
  test::FakeSource source(100);
  source.fail_read_at_ = 30;
  test::FakeSink sink;
  sink.delay_oldest_ = false;
  Pipeline p(source, sink, small_options(), nullptr);
  Status st = p.run(std::stop_token{});
  EXPECT_TRUE(st.is_retry());
  // Everything read before the failure was confirmed and is committed.
  EXPECT_EQ(source.committed_["t0"], source.produced_);
  EXPECT_GE(source.produced_, 30);
}

TEST(Pipeline, StopsAfterMaxRecords) {
  test::FakeSource source(100);
  test::FakeSink sink;
  auto o = small_options();
  o.max_records = 33;
  o.stop_when_idle = false;
  Pipeline p(source, sink, o, nullptr);
  ASSERT_TRUE(p.run(std::stop_token{}).is_ok());
  EXPECT_EQ(source.produced_, 33);
  EXPECT_EQ(source.commits_.size(), 33u);
}

TEST(Pipeline, StopRequestDrainsAndCommits) {
  test::FakeSource source(1000000);
  test::FakeSink sink;
  auto o = small_options();
  o.stop_when_idle = false;
  Pipeline p(source, sink, o, nullptr);
  std::stop_source stop;
  bool idle = false;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(p.step(idle).is_ok());
  stop.request_stop();
  ASSERT_TRUE(p.run(stop.get_token()).is_ok());
  EXPECT_EQ(p.inflight(), 0u);
  EXPECT_EQ(static_cast<std::int64_t>(source.commits_.size()), source.produced_);
}

}  // namespace
}  // namespace mqdr
