#pragma once
// The failover controller (SPEC.md "Failover", docs/failover.md): one per daemon, driving every
// failover group of the config. Per group it probes the primary and standby clusters at
// health.interval, feeds the pure state machine (mqdr/failover_machine.hpp), persists the group's
// state under state_dir/failover/<group>.json before acting, and executes failovers and failbacks
// (fence, drain, stop mirrors, promote, verify, switch clients, record) through the broker
// adapters (BrokerRegistry: Probe, MirrorOps) and the daemon's mirror workers (MirrorControl).
//
// Lifecycle (owned by the daemon):
//   1. construct (loads every group's state; throws std::runtime_error when the state directory
//      cannot be used or another process holds its lock);
//   2. start the configured mirrors, skipping those for which should_run(name) is false (the
//      forward mirrors of a group that is failed over);
//   3. start(): one thread per group; reverse mirrors of failed-over groups are started again and
//      an interrupted switch resumes from its persisted step;
//   4. stop() (or the destructor): threads stop within about health.timeout + hook_timeout; a
//      switch interrupted here resumes at the next start.
// Thread-safety: status(), metrics(), request_failover(), request_failback() and should_run() may
// be called from any thread (admin API) at any time after construction.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mqdr/broker.hpp"
#include "mqdr/config.hpp"
#include "mqdr/stats.hpp"

namespace mqdr {

// How the controller starts and stops mirror workers (the daemon implements it with its
// Supervisor). `start` starts (or replaces) a worker for the given mirror config: the controller
// uses it for the reverse mirrors `<mirror>.reverse` (source and target swapped) and to resume
// forward mirrors after a failback. `stop` stops the named worker, draining it (true when it had
// stopped in time; false when it was not running or did not stop in time). `stats` returns the
// worker's live figures (nullopt when no such worker runs).
struct MirrorControl {
  std::function<void(const MirrorConfig&)> start;
  std::function<bool(const std::string& mirror_name)> stop;
  std::function<std::optional<StatsSnapshot>(const std::string& mirror_name)> stats;
};

// The clock of the driver, injectable for tests.
class FailoverClock {
 public:
  virtual ~FailoverClock() = default;
  virtual std::chrono::steady_clock::time_point steady() const = 0;
  virtual std::chrono::system_clock::time_point wall() const = 0;
};
FailoverClock& real_failover_clock();

// Answer to an operator request; the admin API maps started -> 202, refused -> 409 (with
// `reason`), not_found -> 404.
struct Decision {
  enum class Kind { started, refused, not_found };
  Kind kind = Kind::not_found;
  std::string reason;

  bool started() const { return kind == Kind::started; }
};
const char* to_string(Decision::Kind kind);

// Plain figures for the metrics endpoint, rendered by src/admin:
//   mqdr_failover_state{group,state} 1 for the current state, 0 for every other state of
//   `FailoverMetrics::states`; mqdr_failover_epoch{group}; mqdr_cluster_up{cluster} (only clusters
//   probed at least once); mqdr_cluster_probe_latency_seconds{cluster} (last probe);
//   mqdr_failover_switches_total{group,kind}.
struct FailoverMetrics {
  struct Group {
    std::string group;
    std::string state;
    std::uint64_t epoch = 0;
    std::string active;  // primary | standby
    std::uint64_t failovers_total = 0;  // completed since start
    std::uint64_t failbacks_total = 0;
  };
  struct Cluster {
    std::string cluster;
    bool up = false;
    double probe_latency_seconds = 0;
    std::uint64_t probes_total = 0;
    std::uint64_t probe_failures_total = 0;
  };
  std::vector<std::string> states;  // every state name, for the 0/1 state gauge
  std::vector<Group> groups;
  std::vector<Cluster> clusters;
};

struct FailoverOptions {
  FailoverClock* clock = nullptr;  // null: the real clocks
  // How long the driver waits between attempts while a step is retried.
  Duration retry_interval{0};  // 0: the group's health.interval
};

class FailoverController {
 public:
  // `registry` must outlive the controller. `state_dir` is daemon.state_dir; the controller owns
  // state_dir/failover/ (state files, event logs, lock) and creates state_dir/mirrors/<name>/ for
  // the MirrorOps it makes. Loads every group's state; throws std::runtime_error when the
  // directory cannot be used or another process holds its lock.
  FailoverController(std::shared_ptr<const Config> config, const BrokerRegistry& registry,
                     MirrorControl mirrors, std::filesystem::path state_dir,
                     FailoverOptions options = {});
  ~FailoverController();
  FailoverController(const FailoverController&) = delete;
  FailoverController& operator=(const FailoverController&) = delete;

  void start();
  void stop();

  // False for a configured mirror the daemon must not start now: a forward mirror of a group
  // that is failing over, failed over or failing back (its source is not the active side).
  bool should_run(const std::string& mirror_name) const;

  // SPEC /v1/status `failover[]`: one object per group: group, state, epoch, active, since,
  // mode, reason, clusters[] (name, role, up, latency_ms, message), reverse_replication,
  // last_switch {kind, epoch, automatic, force, reason, started_at, finished_at, duration_ms,
  // outcome, rpo {...}, steps[], unreplicated}.
  nlohmann::json status() const;

  // Operator requests. started: the switch runs on the group's thread (watch status()).
  Decision request_failover(const std::string& group, bool force, std::string reason);
  Decision request_failback(const std::string& group, bool force = false);

  FailoverMetrics metrics() const;

  // Waits until `group` is in `state` (tests, drills); false on timeout or unknown group.
  bool wait_for_state(const std::string& group, const std::string& state,
                      std::chrono::milliseconds timeout) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqdr
