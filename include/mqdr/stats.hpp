#pragma once
// Live figures of one worker (mirror or backup plan), written by the worker's thread and read by
// the admin API and the metrics collector from theirs. Owned by the supervisor (shared_ptr), so it
// outlives worker restarts and keeps counters across them.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace mqdr {

struct StatsSnapshot {
  std::string name;
  std::string kind;   // kafka | nats | rabbitmq
  std::string state;  // starting | running | backoff | stopped | failed | ...
  std::uint64_t records_total = 0;
  std::uint64_t bytes_total = 0;
  std::uint64_t errors_total = 0;
  std::int64_t lag_records = -1;  // -1 unknown
  double lag_seconds = -1;        // -1 unknown
  std::string last_error;
  std::uint64_t restarts = 0;
  nlohmann::json detail = nlohmann::json::object();  // per partition/stream/queue
};

class WorkerStats {
 public:
  WorkerStats(std::string name, std::string kind) : name_(std::move(name)), kind_(std::move(kind)) {}

  void add_records(std::uint64_t records, std::uint64_t bytes) {
    records_.fetch_add(records, std::memory_order_relaxed);
    bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }
  void add_error() { errors_.fetch_add(1, std::memory_order_relaxed); }
  void set_lag(std::int64_t records, double seconds) {
    lag_records_.store(records, std::memory_order_relaxed);
    lag_seconds_.store(seconds, std::memory_order_relaxed);
  }
  void set_state(std::string state) {
    std::lock_guard lock(mu_);
    state_ = std::move(state);
  }
  // Records an error message (must not contain secrets) and counts it.
  void set_error(std::string message) {
    add_error();
    std::lock_guard lock(mu_);
    last_error_ = std::move(message);
  }
  void clear_error() {
    std::lock_guard lock(mu_);
    last_error_.clear();
  }
  void set_detail(nlohmann::json detail) {
    std::lock_guard lock(mu_);
    detail_ = std::move(detail);
  }
  void add_restart() { restarts_.fetch_add(1, std::memory_order_relaxed); }

  const std::string& name() const { return name_; }
  const std::string& kind() const { return kind_; }

  StatsSnapshot snapshot() const {
    StatsSnapshot s;
    s.name = name_;
    s.kind = kind_;
    s.records_total = records_.load(std::memory_order_relaxed);
    s.bytes_total = bytes_.load(std::memory_order_relaxed);
    s.errors_total = errors_.load(std::memory_order_relaxed);
    s.lag_records = lag_records_.load(std::memory_order_relaxed);
    s.lag_seconds = lag_seconds_.load(std::memory_order_relaxed);
    s.restarts = restarts_.load(std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    s.state = state_;
    s.last_error = last_error_;
    s.detail = detail_;
    return s;
  }

 private:
  const std::string name_;
  const std::string kind_;
  std::atomic<std::uint64_t> records_{0}, bytes_{0}, errors_{0}, restarts_{0};
  std::atomic<std::int64_t> lag_records_{-1};
  std::atomic<double> lag_seconds_{-1};
  mutable std::mutex mu_;
  std::string state_ = "starting";
  std::string last_error_;
  nlohmann::json detail_ = nlohmann::json::object();
};

using WorkerStatsPtr = std::shared_ptr<WorkerStats>;

}  // namespace mqdr
