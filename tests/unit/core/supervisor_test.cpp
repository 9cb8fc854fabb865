#include "mqdr/supervisor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

namespace mqdr {
namespace {

using namespace std::chrono_literals;

// A clock whose sleeps return at once and record what was asked: no real waiting in tests.
class FakeClock : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override { return now_; }
  bool sleep_for(std::chrono::milliseconds d, std::stop_token cancel) override {
    {
      std::lock_guard lock(mu);
      sleeps.push_back(d);
      now_ += d;
    }
    // Pretend time passed, but yield a little so a restart loop does not spin the CPU.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return !cancel.stop_requested();
  }
  std::mutex mu;
  std::vector<std::chrono::milliseconds> sleeps;
  std::chrono::steady_clock::time_point now_{};
};

template <typename Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

TEST(Backoff, GrowsExponentiallyAndIsCapped) {
  BackoffPolicy p;
  p.initial = 100ms;
  p.max = 1000ms;
  EXPECT_EQ(p.delay(1), 100ms);
  EXPECT_EQ(p.delay(2), 200ms);
  EXPECT_EQ(p.delay(3), 400ms);
  EXPECT_EQ(p.delay(5), 1000ms);
  EXPECT_EQ(p.delay(500), 1000ms);
}

class FailingWorker : public Worker {
 public:
  FailingWorker(std::atomic<int>& runs, bool throw_it) : runs_(runs), throw_(throw_it) {}
  Status run(std::stop_token) override {
    int n = ++runs_;
    if (throw_) throw std::runtime_error("boom " + std::to_string(n));
    return Status::retry("broker down " + std::to_string(n));
  }
  std::atomic<int>& runs_;
  bool throw_;
};

TEST(Supervisor, RestartsAFailingWorkerWithBackoffAndKeepsItsLastError) {
  FakeClock clock;
  BackoffPolicy policy;
  policy.initial = 100ms;
  policy.max = 400ms;
  Supervisor sup(policy, clock);
  std::atomic<int> runs{0};
  auto stats = std::make_shared<WorkerStats>("m1", "kafka");
  sup.add("m1", [&] { return std::make_unique<FailingWorker>(runs, false); }, stats);
  ASSERT_TRUE(eventually([&] { return runs.load() >= 5; }));
  ASSERT_TRUE(sup.remove("m1", 5s));
  std::lock_guard lock(clock.mu);
  ASSERT_GE(clock.sleeps.size(), 4u);
  EXPECT_EQ(clock.sleeps[0], 100ms);
  EXPECT_EQ(clock.sleeps[1], 200ms);
  EXPECT_EQ(clock.sleeps[2], 400ms);
  EXPECT_EQ(clock.sleeps[3], 400ms);
  auto snap = stats->snapshot();
  EXPECT_NE(snap.last_error.find("broker down"), std::string::npos);
  EXPECT_GE(snap.restarts, 4u);
  EXPECT_EQ(snap.state, "stopped");
}

TEST(Supervisor, AThrowingWorkerIsRestartedToo) {
  FakeClock clock;
  Supervisor sup({}, clock);
  std::atomic<int> runs{0};
  auto stats = std::make_shared<WorkerStats>("m1", "nats");
  sup.add("m1", [&] { return std::make_unique<FailingWorker>(runs, true); }, stats);
  ASSERT_TRUE(eventually([&] { return runs.load() >= 3; }));
  sup.stop_all(5s);
  EXPECT_NE(stats->snapshot().last_error.find("boom"), std::string::npos);
}

TEST(Supervisor, AFactoryThatThrowsIsReportedAndRetried) {
  FakeClock clock;
  Supervisor sup({}, clock);
  std::atomic<int> made{0};
  auto stats = std::make_shared<WorkerStats>("m1", "nats");
  sup.add("m1", [&]() -> WorkerPtr {
    ++made;
    throw std::runtime_error("cannot connect");
  }, stats);
  ASSERT_TRUE(eventually([&] { return made.load() >= 3; }));
  sup.stop_all(5s);
  EXPECT_EQ(stats->snapshot().last_error, "cannot connect");
}

class BlockingWorker : public Worker {
 public:
  explicit BlockingWorker(std::atomic<int>& stopped) : stopped_(stopped) {}
  Status run(std::stop_token stop) override {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    cv.wait(lock, stop, [] { return false; });
    ++stopped_;
    return Status::ok();
  }
  std::atomic<int>& stopped_;
};

TEST(Supervisor, StopAllStopsEveryWorkerAndReplaceRestartsOne) {
  Supervisor sup;
  std::atomic<int> stopped{0};
  for (auto name : {"a", "b", "c"}) {
    sup.add(name, [&] { return std::make_unique<BlockingWorker>(stopped); },
            std::make_shared<WorkerStats>(name, "kafka"));
  }
  ASSERT_TRUE(eventually([&] { return sup.all_started(); }));
  EXPECT_EQ(sup.names(), (std::vector<std::string>{"a", "b", "c"}));
  // Replacing "b" stops the old one first.
  sup.add("b", [&] { return std::make_unique<BlockingWorker>(stopped); },
          std::make_shared<WorkerStats>("b", "kafka"));
  EXPECT_EQ(stopped.load(), 1);
  ASSERT_TRUE(eventually([&] { return sup.all_started(); }));
  EXPECT_TRUE(sup.stop_all(5s));
  EXPECT_EQ(stopped.load(), 4);
  EXPECT_TRUE(sup.names().empty());
}

class StuckWorker : public Worker {
 public:
  Status run(std::stop_token) override {
    std::this_thread::sleep_for(1500ms);  // ignores stop for a while
    return Status::ok();
  }
};

TEST(Supervisor, RemoveGivesUpOnAWorkerThatIgnoresStop) {
  Supervisor sup;
  sup.add("stuck", [] { return std::make_unique<StuckWorker>(); },
          std::make_shared<WorkerStats>("stuck", "kafka"));
  ASSERT_TRUE(eventually([&] { return sup.all_started(); }));
  EXPECT_FALSE(sup.remove("stuck", 50ms));
  EXPECT_FALSE(sup.has("stuck"));
  std::this_thread::sleep_for(1600ms);  // let the detached thread finish before exit
}

}  // namespace
}  // namespace mqdr
