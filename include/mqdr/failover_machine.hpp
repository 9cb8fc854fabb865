#pragma once
// The failover state machine of one group (SPEC.md "Failover"), pure: state + event -> new state +
// actions. No IO, no clock of its own: every event carries the time it happened (steady for
// counting and deadlines, wall for what is persisted and shown). The driver (FailoverController,
// src/failover/controller.cpp) feeds it probe rounds, witness verdicts, operator requests and step
// results, and executes the actions it returns, in order.
// Thread-safety: none; the driver serializes every call under the group's mutex.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mqdr/config.hpp"

namespace mqdr::failover {

enum class GroupState { replicating, suspect, failing_over, failed_over, failing_back, blocked };
const char* to_string(GroupState state);
std::optional<GroupState> parse_state(const std::string& text);
const std::vector<GroupState>& all_states();

// Which side of the pairs clients use.
enum class Side { primary, standby };
const char* to_string(Side side);

// The steps of a switch, in execution order (failover_steps() / failback_steps()).
//  fence          failover: fence hooks (block writers on the primary); failback: the same hooks
//                 told MQDR_STATE=failing_back, MQDR_ACTIVE=standby (block writers on the standby)
//  drain          let the mirrors that will be stopped catch up (failover: within drain_timeout,
//                 best effort; failback: the reverse mirrors must reach zero lag or it aborts)
//  stop_mirrors   stop the mirrors reading from the side being left
//  promote        per mirror MirrorOps::final_sync then MirrorOps::promote
//  verify         per mirror MirrorOps::verify; what could not be checked is recorded
//  switch_clients rewrite the clients file, run the client hooks
//  resume         failback only: start forward replication primary -> standby again
//  record         timings, RPO estimate, event log
enum class Step { fence, drain, stop_mirrors, promote, verify, switch_clients, resume, record };
const char* to_string(Step step);
std::optional<Step> parse_step(const std::string& text);
const std::vector<Step>& failover_steps();
const std::vector<Step>& failback_steps();

enum class SwitchKind { failover, failback };
const char* to_string(SwitchKind kind);

// A point in time as the driver's clock saw it.
struct Instant {
  std::chrono::steady_clock::time_point steady{};
  std::chrono::system_clock::time_point wall{};
};

// What the machine needs of the group's configuration.
struct MachineSettings {
  FailoverMode mode = FailoverMode::manual;
  Duration interval{std::chrono::seconds(1)};
  Duration timeout{std::chrono::seconds(2)};
  int failures = 3;
  int recoveries = 5;
  Duration max_lag{std::chrono::seconds(30)};
  Duration hold_down{std::chrono::minutes(5)};
  bool auto_failback = false;
  int witnesses = 0;  // how many witness URLs are configured

  static MachineSettings from(const FailoverGroupConfig& group);
};

enum class EventType {
  probe,              // one probe round of one side
  witness_verdict,    // answer to a query_witnesses action
  request_failover,   // operator (admin API / CLI)
  request_failback,   // operator
  step_done,          // the driver finished the current step
  step_failed,        // the driver could not finish the current step
  tick,               // time passes (hold_down expiry)
};
const char* to_string(EventType type);

struct Event {
  EventType type = EventType::tick;
  Instant at;

  // probe
  Side side = Side::primary;
  bool ok = false;
  // probe of the primary side that failed: true when the mirrors reading from the failed
  // cluster(s) are broken too (holistic detection: a primary only counts as down when its
  // replication agrees).
  bool mirror_broken = false;
  // probe of the primary side: the current replication lag (max over the forward mirrors) when
  // known; the machine keeps the last known value for the max_lag check.
  std::optional<Duration> lag;

  // witness_verdict
  int agree = 0;
  int answered = 0;

  // request_failover / request_failback
  bool force = false;
  std::string reason;

  // step_done / step_failed
  Step step = Step::fence;
  bool abort = false;  // step_failed: give the switch up (else: the step is retried)
  Duration duration{0};
  nlohmann::json detail = nlohmann::json::object();

  static Event probe(Instant at, Side side, bool ok, bool mirror_broken = false,
                     std::optional<Duration> lag = std::nullopt);
  static Event witnesses(Instant at, int agree, int answered);
  static Event failover(Instant at, bool force, std::string reason);
  static Event failback(Instant at, bool force = false, std::string reason = {});
  static Event done(Instant at, Step step, Duration duration = Duration{0},
                    nlohmann::json detail = nlohmann::json::object());
  static Event failed(Instant at, Step step, bool abort, std::string reason,
                      Duration duration = Duration{0},
                      nlohmann::json detail = nlohmann::json::object());
  static Event tick(Instant at);
};

enum class ActionType {
  persist,          // write the state file now, before executing any later action
  log_event,        // append `detail` to the event log
  query_witnesses,  // ask the witnesses, answer with a witness_verdict event
  run_step,         // execute `step` of the current switch (retry: it failed before)
  resume_forward,   // start the forward mirrors again (an aborted failover fenced them)
  start_reverse,    // start the reverse mirrors standby -> primary; with detail
                    // {"report_unreplicated": true} first report what the old primary holds
                    // beyond the standby (MirrorOps::unreplicated)
};
const char* to_string(ActionType type);

struct Action {
  ActionType type = ActionType::persist;
  Step step = Step::fence;
  bool retry = false;
  nlohmann::json detail = nlohmann::json::object();

  bool operator==(const Action& o) const {
    return type == o.type && (type != ActionType::run_step || (step == o.step && retry == o.retry));
  }
};

enum class DecisionKind { started, refused, not_found, ignored };
const char* to_string(DecisionKind kind);

struct Outcome {
  DecisionKind decision = DecisionKind::ignored;  // started / refused for requests
  std::string reason;                             // why refused, or what happened
  std::vector<Action> actions;
};

// One step's record within a switch.
struct StepRecord {
  Step step = Step::fence;
  bool ok = true;
  std::int64_t duration_ms = 0;
  nlohmann::json detail = nlohmann::json::object();
};

// The switch in progress, or the last one.
struct SwitchRecord {
  SwitchKind kind = SwitchKind::failover;
  std::uint64_t epoch = 0;
  bool automatic = false;
  bool force = false;
  std::string reason;
  std::chrono::system_clock::time_point started_at{};
  std::chrono::system_clock::time_point finished_at{};  // epoch 0 while running
  std::string outcome;  // "" running | completed | aborted: <why>
  std::optional<Duration> lag_at_trigger;  // last known replication lag when it started
  std::vector<StepRecord> steps;
  nlohmann::json unreplicated = nlohmann::json();  // what the old primary held (failover only)
};

// Everything persisted about a group (state file) plus the in-memory counters.
struct GroupData {
  GroupState state = GroupState::replicating;
  std::uint64_t epoch = 0;
  Side active = Side::primary;
  std::chrono::system_clock::time_point since{};       // when `state` was entered (wall)
  std::string reason;                                   // why the group is in this state
  std::size_t step_index = 0;                           // next step of the running switch
  std::optional<SwitchRecord> current;                  // the running or last switch
  std::chrono::system_clock::time_point switched_at{};  // end of the last switch (wall)
  bool reverse_running = false;                         // failed_over: reverse mirrors started

  // Not persisted (rebuilt from probes after a restart).
  int primary_failures = 0;
  int primary_oks = 0;
  std::optional<bool> primary_up;
  int standby_failures = 0;
  int standby_oks = 0;
  std::optional<bool> standby_up;
  std::optional<Duration> last_lag;
  bool witness_pending = false;
  std::optional<Instant> last_primary_probe;
  std::optional<Instant> last_standby_probe;
  std::chrono::steady_clock::time_point switched_steady{};  // hold_down reference
  std::uint64_t clock_jumps = 0;
};

nlohmann::json to_json(const SwitchRecord& record);
SwitchRecord switch_from_json(const nlohmann::json& j);  // throws std::runtime_error

class Machine {
 public:
  Machine(std::string group, MachineSettings settings);

  // Restores persisted data (after load). Counters start fresh; a `suspect` group restarts as
  // `replicating` (its failure count is gone). Returns the actions that continue what was running:
  // the current step of a switch, or the reverse mirrors of a failed-over group.
  std::vector<Action> restore(GroupData data, Instant now);

  Outcome handle(const Event& event);

  // Check, then act (MaxScale's failover_check): would a failover be started now? Pure.
  bool failover_check(bool automatic, bool force, std::string& why_not) const;
  bool failback_check(bool automatic, bool force, Instant now, std::string& why_not) const;

  // Records what the old primary held beyond the standby (MirrorOps::unreplicated, reported by
  // the driver when it starts the reverse mirrors) in the last switch's record.
  void set_unreplicated(nlohmann::json report);

  const GroupData& data() const { return data_; }
  const std::string& group() const { return group_; }
  const MachineSettings& settings() const { return settings_; }
  const std::vector<Step>& steps() const;  // of the current switch

  // The persisted part as JSON (state file) and back. from_json throws std::runtime_error with a
  // message naming what is wrong.
  nlohmann::json to_json() const;
  static GroupData from_json(const nlohmann::json& j);

  // A gap between two probe rounds of one side that cannot be explained by the interval (process
  // stopped, host suspended, wall clock stepped): such a round never counts as a failure.
  bool is_clock_jump(const Instant& previous, const Instant& now) const;

 private:
  Outcome on_probe(const Event& e);
  Outcome on_primary_probe(const Event& e);
  Outcome on_standby_probe(const Event& e);
  Outcome on_witnesses(const Event& e);
  Outcome on_request_failover(const Event& e);
  Outcome on_request_failback(const Event& e);
  Outcome on_step_done(const Event& e);
  Outcome on_step_failed(const Event& e);
  Outcome on_tick(const Event& e);

  Outcome try_automatic_failover(const Event& e);
  Outcome try_automatic_failback(const Event& e);
  void start_switch(Outcome& out, SwitchKind kind, const Event& e, bool automatic);
  void enter(Outcome& out, GroupState state, Instant at, std::string reason);
  nlohmann::json event_entry(const std::string& what, Instant at) const;

  std::string group_;
  MachineSettings settings_;
  GroupData data_;
};

std::string format_time(std::chrono::system_clock::time_point t);  // RFC 3339 UTC, ms
std::optional<std::chrono::system_clock::time_point> parse_time(const std::string& text);

}  // namespace mqdr::failover
