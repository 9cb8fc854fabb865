#include "mqdr/supervisor.hpp"

#include <algorithm>
#include <cmath>
#include <exception>

#include <spdlog/spdlog.h>

namespace mqdr {

std::chrono::milliseconds BackoffPolicy::delay(int failures) const {
  if (failures <= 1) return initial;
  double ms = static_cast<double>(initial.count()) * std::pow(factor, failures - 1);
  if (!std::isfinite(ms) || ms > static_cast<double>(max.count())) return max;
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

namespace {

class SystemClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override {
    return std::chrono::steady_clock::now();
  }
  bool sleep_for(std::chrono::milliseconds d, std::stop_token cancel) override {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    return !cv.wait_for(lock, cancel, d, [] { return false; }) && !cancel.stop_requested();
  }
};

}  // namespace

Clock& system_clock() {
  static SystemClock clock;
  return clock;
}

struct Supervisor::Entry {
  std::string name;
  WorkerFactory factory;
  WorkerStatsPtr stats;
  std::jthread thread;
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;
  bool started = false;
};

Supervisor::Supervisor(BackoffPolicy policy, Clock& clock) : policy_(policy), clock_(clock) {}

Supervisor::~Supervisor() { stop_all(std::chrono::seconds(30)); }

void Supervisor::add(const std::string& name, WorkerFactory factory, WorkerStatsPtr stats) {
  remove(name, std::chrono::seconds(30));
  auto entry = std::make_shared<Entry>();
  entry->name = name;
  entry->factory = std::move(factory);
  entry->stats = std::move(stats);
  std::lock_guard lock(mu_);
  entries_[name] = entry;
  entry->thread = std::jthread([this, entry](std::stop_token stop) { run_entry(entry, stop); });
}

void Supervisor::run_entry(std::shared_ptr<Entry> entry, std::stop_token stop) {
  int failures = 0;
  auto& stats = *entry->stats;
  while (!stop.stop_requested()) {
    const auto started = clock_.now();
    Status result;
    try {
      WorkerPtr worker = entry->factory();
      {
        std::lock_guard lock(entry->mu);
        entry->started = true;
      }
      stats.set_state("running");
      result = worker->run(stop);
    } catch (const std::exception& e) {
      result = Status::fatal(e.what());
    } catch (...) {
      result = Status::fatal("unknown exception");
    }
    if (stop.stop_requested()) break;
    if (result.is_ok()) {
      // A worker that returns ok without being asked to stop has finished its work.
      stats.set_state("stopped");
      break;
    }
    if (clock_.now() - started >= policy_.reset_after) failures = 0;
    ++failures;
    const auto delay = policy_.delay(failures);
    stats.set_error(result.message());
    stats.add_restart();
    stats.set_state("backoff");
    spdlog::error("worker={} failed ({}), restart {} in {} ms: {}", entry->name,
                  result.is_retry() ? "retryable" : "fatal", failures, delay.count(),
                  result.message());
    if (!clock_.sleep_for(delay, stop)) break;
  }
  if (stop.stop_requested()) stats.set_state("stopped");
  std::lock_guard lock(entry->mu);
  entry->done = true;
  entry->done_cv.notify_all();
}

bool Supervisor::stop_entries(std::vector<std::shared_ptr<Entry>> entries,
                              std::chrono::milliseconds timeout) {
  for (auto& e : entries) e->thread.request_stop();
  const auto until = std::chrono::steady_clock::now() + timeout;
  bool all = true;
  for (auto& e : entries) {
    std::unique_lock lock(e->mu);
    if (e->done_cv.wait_until(lock, until, [&] { return e->done; })) {
      lock.unlock();
      if (e->thread.joinable()) e->thread.join();
    } else {
      lock.unlock();
      spdlog::error("worker={} did not stop within {} ms; leaving it behind", e->name,
                    timeout.count());
      if (e->thread.joinable()) e->thread.detach();
      all = false;
    }
  }
  return all;
}

bool Supervisor::remove(const std::string& name, std::chrono::milliseconds timeout) {
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) return true;
    entry = it->second;
    entries_.erase(it);
  }
  return stop_entries({entry}, timeout);
}

bool Supervisor::stop_all(std::chrono::milliseconds timeout) {
  std::vector<std::shared_ptr<Entry>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [_, e] : entries_) all.push_back(e);
    entries_.clear();
  }
  return stop_entries(std::move(all), timeout);
}

bool Supervisor::has(const std::string& name) const {
  std::lock_guard lock(mu_);
  return entries_.count(name) != 0;
}

std::vector<std::string> Supervisor::names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (auto& [n, _] : entries_) out.push_back(n);
  return out;
}

std::vector<WorkerStatsPtr> Supervisor::stats() const {
  std::lock_guard lock(mu_);
  std::vector<WorkerStatsPtr> out;
  for (auto& [_, e] : entries_) out.push_back(e->stats);
  return out;
}

WorkerStatsPtr Supervisor::stats(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second->stats;
}

bool Supervisor::all_started() const {
  std::lock_guard lock(mu_);
  for (auto& [_, e] : entries_) {
    std::lock_guard elock(e->mu);
    if (!e->started) return false;
  }
  return true;
}

}  // namespace mqdr
