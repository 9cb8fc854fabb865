#pragma once
// Runs workers (one per mirror, per backup plan, ...) on threads of their own and restarts a
// failed one after an exponential backoff (capped), keeping its last error for status.
// Lifecycle changes (add, remove, replace, stop) go through one mutex-protected table and are
// applied one at a time; workers never change the table themselves.
// Thread-safety: every public method may be called from any thread.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mqdr/stats.hpp"
#include "mqdr/worker.hpp"

namespace mqdr {

struct BackoffPolicy {
  std::chrono::milliseconds initial{500};
  std::chrono::milliseconds max{std::chrono::seconds(60)};
  double factor = 2.0;
  // A worker that ran at least this long before failing starts again from `initial`.
  std::chrono::milliseconds reset_after{std::chrono::seconds(60)};

  // Delay before restart number `failures` (1 = first restart).
  std::chrono::milliseconds delay(int failures) const;
};

// Time source and sleeper, injectable so tests need no real waiting.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point now() const = 0;
  // Waits up to `d` or until `cancel` is requested; returns false when cancelled.
  virtual bool sleep_for(std::chrono::milliseconds d, std::stop_token cancel) = 0;
};
Clock& system_clock();

class Supervisor {
 public:
  explicit Supervisor(BackoffPolicy policy = {}, Clock& clock = system_clock());
  ~Supervisor();  // stops every worker
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts a worker under `name` (replacing any running one of that name, which is stopped
  // first). `stats` is shared with status/metrics and survives restarts.
  void add(const std::string& name, WorkerFactory factory, WorkerStatsPtr stats);

  // Requests stop and waits until the worker's run() returned, at most `timeout`.
  // Returns false when it did not return in time (its thread is then detached and left to end).
  bool remove(const std::string& name, std::chrono::milliseconds timeout);

  // Stops every worker within `timeout` in all (requests all first, then waits).
  bool stop_all(std::chrono::milliseconds timeout);

  bool has(const std::string& name) const;
  std::vector<std::string> names() const;
  // Stats of every supervised worker, in name order.
  std::vector<WorkerStatsPtr> stats() const;
  WorkerStatsPtr stats(const std::string& name) const;

  // True once every worker's run() has been entered at least once.
  bool all_started() const;

 private:
  struct Entry;
  void run_entry(std::shared_ptr<Entry> entry, std::stop_token stop);
  bool stop_entries(std::vector<std::shared_ptr<Entry>> entries, std::chrono::milliseconds timeout);

  BackoffPolicy policy_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
};

}  // namespace mqdr
