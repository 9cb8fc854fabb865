// The pure failover state machine (include/mqdr/failover_machine.hpp). Every decision is made
// here; the driver only executes the returned actions.

#include "mqdr/failover_machine.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include <fmt/format.h>

namespace mqdr::failover {

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

template <typename E, std::size_t N>
std::optional<E> parse_enum(const std::string& text, const std::array<E, N>& all,
                            const char* (*name)(E)) {
  for (E e : all) {
    if (text == name(e)) return e;
  }
  return std::nullopt;
}

constexpr std::array<GroupState, 6> kStates = {GroupState::replicating,  GroupState::suspect,
                                               GroupState::failing_over, GroupState::failed_over,
                                               GroupState::failing_back, GroupState::blocked};
constexpr std::array<Step, 8> kSteps = {Step::fence,   Step::drain,          Step::stop_mirrors,
                                        Step::promote, Step::verify,         Step::switch_clients,
                                        Step::resume,  Step::record};

std::size_t index_of(const std::vector<Step>& steps, Step step) {
  auto it = std::find(steps.begin(), steps.end(), step);
  return static_cast<std::size_t>(it - steps.begin());
}

std::string seconds_text(Duration d) { return fmt::format("{:.1f}s", d.count() / 1000.0); }

Action action(ActionType type, nlohmann::json detail = nlohmann::json::object()) {
  Action a;
  a.type = type;
  a.detail = std::move(detail);
  return a;
}

Action run_step(Step step, bool retry) {
  Action a;
  a.type = ActionType::run_step;
  a.step = step;
  a.retry = retry;
  return a;
}

}  // namespace

const char* to_string(GroupState state) {
  switch (state) {
    case GroupState::replicating: return "replicating";
    case GroupState::suspect: return "suspect";
    case GroupState::failing_over: return "failing_over";
    case GroupState::failed_over: return "failed_over";
    case GroupState::failing_back: return "failing_back";
    case GroupState::blocked: return "blocked";
  }
  return "unknown";
}

std::optional<GroupState> parse_state(const std::string& text) {
  return parse_enum<GroupState>(text, kStates, &to_string);
}

const std::vector<GroupState>& all_states() {
  static const std::vector<GroupState> states(kStates.begin(), kStates.end());
  return states;
}

const char* to_string(Side side) { return side == Side::primary ? "primary" : "standby"; }

const char* to_string(Step step) {
  switch (step) {
    case Step::fence: return "fence";
    case Step::drain: return "drain";
    case Step::stop_mirrors: return "stop_mirrors";
    case Step::promote: return "promote";
    case Step::verify: return "verify";
    case Step::switch_clients: return "switch_clients";
    case Step::resume: return "resume";
    case Step::record: return "record";
  }
  return "unknown";
}

std::optional<Step> parse_step(const std::string& text) {
  return parse_enum<Step>(text, kSteps, &to_string);
}

const std::vector<Step>& failover_steps() {
  static const std::vector<Step> steps = {Step::fence,   Step::drain,          Step::stop_mirrors,
                                          Step::promote, Step::verify,         Step::switch_clients,
                                          Step::record};
  return steps;
}

const std::vector<Step>& failback_steps() {
  static const std::vector<Step> steps = {Step::fence,  Step::drain,          Step::stop_mirrors,
                                          Step::promote, Step::verify,        Step::switch_clients,
                                          Step::resume, Step::record};
  return steps;
}

const char* to_string(SwitchKind kind) {
  return kind == SwitchKind::failover ? "failover" : "failback";
}

const char* to_string(EventType type) {
  switch (type) {
    case EventType::probe: return "probe";
    case EventType::witness_verdict: return "witness_verdict";
    case EventType::request_failover: return "request_failover";
    case EventType::request_failback: return "request_failback";
    case EventType::step_done: return "step_done";
    case EventType::step_failed: return "step_failed";
    case EventType::tick: return "tick";
  }
  return "unknown";
}

const char* to_string(ActionType type) {
  switch (type) {
    case ActionType::persist: return "persist";
    case ActionType::log_event: return "log_event";
    case ActionType::query_witnesses: return "query_witnesses";
    case ActionType::run_step: return "run_step";
    case ActionType::resume_forward: return "resume_forward";
    case ActionType::start_reverse: return "start_reverse";
  }
  return "unknown";
}

const char* to_string(DecisionKind kind) {
  switch (kind) {
    case DecisionKind::started: return "started";
    case DecisionKind::refused: return "refused";
    case DecisionKind::not_found: return "not_found";
    case DecisionKind::ignored: return "ignored";
  }
  return "unknown";
}

MachineSettings MachineSettings::from(const FailoverGroupConfig& group) {
  MachineSettings s;
  s.mode = group.mode;
  s.interval = group.health.interval;
  s.timeout = group.health.timeout;
  s.failures = std::max(1, group.health.failures);
  s.recoveries = std::max(1, group.health.recoveries);
  s.max_lag = group.max_lag;
  s.hold_down = group.hold_down;
  s.auto_failback = group.auto_failback;
  s.witnesses = static_cast<int>(group.witnesses.size());
  return s;
}

Event Event::probe(Instant at, Side side, bool ok, bool mirror_broken,
                   std::optional<Duration> lag) {
  Event e;
  e.type = EventType::probe;
  e.at = at;
  e.side = side;
  e.ok = ok;
  e.mirror_broken = mirror_broken;
  e.lag = lag;
  return e;
}

Event Event::witnesses(Instant at, int agree, int answered) {
  Event e;
  e.type = EventType::witness_verdict;
  e.at = at;
  e.agree = agree;
  e.answered = answered;
  return e;
}

Event Event::failover(Instant at, bool force, std::string reason) {
  Event e;
  e.type = EventType::request_failover;
  e.at = at;
  e.force = force;
  e.reason = std::move(reason);
  return e;
}

Event Event::failback(Instant at, bool force, std::string reason) {
  Event e;
  e.type = EventType::request_failback;
  e.at = at;
  e.force = force;
  e.reason = std::move(reason);
  return e;
}

Event Event::done(Instant at, Step step, Duration duration, nlohmann::json detail) {
  Event e;
  e.type = EventType::step_done;
  e.at = at;
  e.step = step;
  e.duration = duration;
  e.detail = std::move(detail);
  return e;
}

Event Event::failed(Instant at, Step step, bool abort, std::string reason, Duration duration,
                    nlohmann::json detail) {
  Event e;
  e.type = EventType::step_failed;
  e.at = at;
  e.step = step;
  e.abort = abort;
  e.reason = std::move(reason);
  e.duration = duration;
  e.detail = std::move(detail);
  return e;
}

Event Event::tick(Instant at) {
  Event e;
  e.type = EventType::tick;
  e.at = at;
  return e;
}

std::string format_time(std::chrono::system_clock::time_point t) {
  if (t.time_since_epoch().count() == 0) return "";
  auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  if (ms < 0 && ms % 1000 != 0) secs -= 1;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ((ms % 1000) + 1000) % 1000);
}

std::optional<std::chrono::system_clock::time_point> parse_time(const std::string& text) {
  if (text.empty()) return std::chrono::system_clock::time_point{};
  std::tm tm{};
  int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0, ms = 0;
  int n = std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &year, &mon, &day, &hour, &min,
                      &sec, &ms);
  if (n < 6) return std::nullopt;
  if (n == 6) ms = 0;
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  std::time_t secs = timegm(&tm);
  if (secs == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::seconds(secs) + milliseconds(ms));
}

nlohmann::json to_json(const SwitchRecord& r) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : r.steps) {
    steps.push_back({{"step", to_string(s.step)},
                     {"ok", s.ok},
                     {"duration_ms", s.duration_ms},
                     {"detail", s.detail}});
  }
  nlohmann::json j = {{"kind", to_string(r.kind)},
                      {"epoch", r.epoch},
                      {"automatic", r.automatic},
                      {"force", r.force},
                      {"reason", r.reason},
                      {"started_at", format_time(r.started_at)},
                      {"finished_at", format_time(r.finished_at)},
                      {"outcome", r.outcome},
                      {"steps", steps},
                      {"unreplicated", r.unreplicated}};
  if (r.lag_at_trigger) {
    j["lag_at_trigger_ms"] = r.lag_at_trigger->count();
  } else {
    j["lag_at_trigger_ms"] = nullptr;
  }
  if (r.finished_at.time_since_epoch().count() != 0) {
    j["duration_ms"] = duration_cast<milliseconds>(r.finished_at - r.started_at).count();
  }
  return j;
}

namespace {

const nlohmann::json& field(const nlohmann::json& j, const char* key, const char* where) {
  if (!j.is_object() || !j.contains(key)) {
    throw std::runtime_error(fmt::format("{}: missing field '{}'", where, key));
  }
  return j.at(key);
}

std::string string_field(const nlohmann::json& j, const char* key, const char* where) {
  const auto& v = field(j, key, where);
  if (!v.is_string()) throw std::runtime_error(fmt::format("{}: '{}' is not a string", where, key));
  return v.get<std::string>();
}

std::chrono::system_clock::time_point time_field(const nlohmann::json& j, const char* key,
                                                 const char* where) {
  auto text = string_field(j, key, where);
  auto t = parse_time(text);
  if (!t) throw std::runtime_error(fmt::format("{}: '{}' is not a time: '{}'", where, key, text));
  return *t;
}

}  // namespace

SwitchRecord switch_from_json(const nlohmann::json& j) {
  const char* where = "current";
  if (!j.is_object()) throw std::runtime_error("current: not an object");
  SwitchRecord r;
  auto kind = string_field(j, "kind", where);
  if (kind == "failover") {
    r.kind = SwitchKind::failover;
  } else if (kind == "failback") {
    r.kind = SwitchKind::failback;
  } else {
    throw std::runtime_error(fmt::format("current: unknown kind '{}'", kind));
  }
  const auto& epoch = field(j, "epoch", where);
  if (!epoch.is_number_unsigned()) throw std::runtime_error("current: 'epoch' is not a number");
  r.epoch = epoch.get<std::uint64_t>();
  r.automatic = j.value("automatic", false);
  r.force = j.value("force", false);
  r.reason = j.value("reason", "");
  r.started_at = time_field(j, "started_at", where);
  r.finished_at = time_field(j, "finished_at", where);
  r.outcome = j.value("outcome", "");
  if (j.contains("lag_at_trigger_ms") && j["lag_at_trigger_ms"].is_number_integer()) {
    r.lag_at_trigger = Duration(j["lag_at_trigger_ms"].get<std::int64_t>());
  }
  if (j.contains("steps")) {
    if (!j["steps"].is_array()) throw std::runtime_error("current: 'steps' is not an array");
    for (const auto& s : j["steps"]) {
      StepRecord rec;
      auto name = string_field(s, "step", "current.steps[]");
      auto step = parse_step(name);
      if (!step) throw std::runtime_error(fmt::format("current.steps[]: unknown step '{}'", name));
      rec.step = *step;
      rec.ok = s.value("ok", true);
      rec.duration_ms = s.value("duration_ms", std::int64_t{0});
      rec.detail = s.value("detail", nlohmann::json::object());
      r.steps.push_back(std::move(rec));
    }
  }
  r.unreplicated = j.value("unreplicated", nlohmann::json());
  return r;
}

Machine::Machine(std::string group, MachineSettings settings)
    : group_(std::move(group)), settings_(settings) {}

void Machine::set_unreplicated(nlohmann::json report) {
  if (data_.current) data_.current->unreplicated = std::move(report);
}

const std::vector<Step>& Machine::steps() const {
  if (data_.current && data_.current->kind == SwitchKind::failback) return failback_steps();
  return failover_steps();
}

nlohmann::json Machine::to_json() const {
  nlohmann::json j = {{"version", 1},
                      {"group", group_},
                      {"state", to_string(data_.state)},
                      {"epoch", data_.epoch},
                      {"active", to_string(data_.active)},
                      {"since", format_time(data_.since)},
                      {"reason", data_.reason},
                      {"step_index", data_.step_index},
                      {"switched_at", format_time(data_.switched_at)},
                      {"reverse_running", data_.reverse_running}};
  j["current"] = data_.current ? failover::to_json(*data_.current) : nlohmann::json();
  return j;
}

GroupData Machine::from_json(const nlohmann::json& j) {
  const char* where = "state file";
  if (!j.is_object()) throw std::runtime_error("state file: not a JSON object");
  const auto& version = field(j, "version", where);
  if (!version.is_number_integer() || version.get<int>() != 1) {
    throw std::runtime_error("state file: unsupported 'version' (expected 1)");
  }
  GroupData d;
  auto state_text = string_field(j, "state", where);
  auto state = parse_state(state_text);
  if (!state) throw std::runtime_error(fmt::format("state file: unknown state '{}'", state_text));
  d.state = *state;
  const auto& epoch = field(j, "epoch", where);
  if (!epoch.is_number_unsigned()) throw std::runtime_error("state file: 'epoch' is not a number");
  d.epoch = epoch.get<std::uint64_t>();
  auto active = string_field(j, "active", where);
  if (active == "primary") {
    d.active = Side::primary;
  } else if (active == "standby") {
    d.active = Side::standby;
  } else {
    throw std::runtime_error(fmt::format("state file: unknown active side '{}'", active));
  }
  d.since = time_field(j, "since", where);
  d.reason = j.value("reason", "");
  const auto& index = field(j, "step_index", where);
  if (!index.is_number_unsigned()) throw std::runtime_error("state file: bad 'step_index'");
  d.step_index = index.get<std::size_t>();
  d.switched_at = time_field(j, "switched_at", where);
  d.reverse_running = j.value("reverse_running", false);
  if (j.contains("current") && !j["current"].is_null()) d.current = switch_from_json(j["current"]);
  bool switching = d.state == GroupState::failing_over || d.state == GroupState::failing_back;
  if (switching) {
    if (!d.current) throw std::runtime_error("state file: a switch is running but 'current' is empty");
    bool failback = d.current->kind == SwitchKind::failback;
    if (failback != (d.state == GroupState::failing_back)) {
      throw std::runtime_error("state file: 'current.kind' does not match 'state'");
    }
    const auto& steps = failback ? failback_steps() : failover_steps();
    if (d.step_index >= steps.size()) throw std::runtime_error("state file: 'step_index' too large");
  }
  return d;
}

bool Machine::is_clock_jump(const Instant& previous, const Instant& now) const {
  auto steady_gap = now.steady - previous.steady;
  auto wall_gap = now.wall - previous.wall;
  // A round takes at most interval + timeout (the clusters are probed in parallel); a gap far
  // beyond that means this process did not run (SIGSTOP, overloaded host, suspend on a clock
  // that counts it).
  auto budget = 2 * (settings_.interval + settings_.timeout) + std::chrono::seconds(1);
  if (steady_gap > budget) return true;
  // CLOCK_MONOTONIC does not advance while the host is suspended; the wall clock does. A wall
  // clock step (NTP) shows the same way. Either makes this round untrustworthy.
  auto drift = duration_cast<milliseconds>(wall_gap) - duration_cast<milliseconds>(steady_gap);
  auto tolerance = std::max<Duration>(settings_.interval, std::chrono::seconds(2));
  return drift > tolerance || drift < -tolerance;
}

std::vector<Action> Machine::restore(GroupData data, Instant now) {
  data_ = GroupData{};
  data_.state = data.state;
  data_.epoch = data.epoch;
  data_.active = data.active;
  data_.since = data.since;
  data_.reason = data.reason;
  data_.step_index = data.step_index;
  data_.current = std::move(data.current);
  data_.switched_at = data.switched_at;
  data_.reverse_running = data.reverse_running;
  // hold_down counts from the persisted wall time of the last switch; a wall clock that went
  // back counts as "just switched" (the safe side for an automatic failback).
  auto elapsed = now.wall - data_.switched_at;
  if (data_.switched_at.time_since_epoch().count() == 0) {
    data_.switched_steady = now.steady - settings_.hold_down - std::chrono::seconds(1);
  } else if (elapsed < std::chrono::system_clock::duration::zero()) {
    data_.switched_steady = now.steady;
  } else {
    data_.switched_steady = now.steady - duration_cast<std::chrono::steady_clock::duration>(elapsed);
  }

  std::vector<Action> actions;
  switch (data_.state) {
    case GroupState::suspect:
      // The failure count is gone with the old process: start counting again.
      data_.state = GroupState::replicating;
      data_.since = now.wall;
      data_.reason = "restarted while suspect: probing again";
      actions.push_back(action(ActionType::persist));
      break;
    case GroupState::failing_over:
      actions.push_back(run_step(steps()[data_.step_index], true));
      break;
    case GroupState::failing_back:
      // Before the reverse mirrors were stopped they must run for the drain.
      if (data_.step_index <= index_of(failback_steps(), Step::drain)) {
        actions.push_back(action(ActionType::start_reverse, {{"report_unreplicated", false}}));
      }
      actions.push_back(run_step(steps()[data_.step_index], true));
      break;
    case GroupState::failed_over:
      if (data_.reverse_running) {
        actions.push_back(action(ActionType::start_reverse, {{"report_unreplicated", false}}));
      }
      break;
    case GroupState::replicating:
    case GroupState::blocked:
      break;
  }
  return actions;
}

nlohmann::json Machine::event_entry(const std::string& what, Instant at) const {
  return {{"at", format_time(at.wall)},
          {"group", group_},
          {"event", what},
          {"state", to_string(data_.state)},
          {"epoch", data_.epoch},
          {"active", to_string(data_.active)}};
}

void Machine::enter(Outcome& out, GroupState state, Instant at, std::string reason) {
  GroupState from = data_.state;
  data_.state = state;
  // Leaving `blocked` by itself takes `recoveries` good probes counted from now on.
  if (state == GroupState::blocked) data_.primary_oks = 0;
  data_.since = at.wall;
  data_.reason = std::move(reason);
  out.actions.push_back(action(ActionType::persist));
  auto entry = event_entry("state", at);
  entry["from"] = to_string(from);
  entry["reason"] = data_.reason;
  out.actions.push_back(action(ActionType::log_event, std::move(entry)));
}

Outcome Machine::handle(const Event& e) {
  Outcome out;
  switch (e.type) {
    case EventType::probe: out = on_probe(e); break;
    case EventType::witness_verdict: out = on_witnesses(e); break;
    case EventType::request_failover: out = on_request_failover(e); break;
    case EventType::request_failback: out = on_request_failback(e); break;
    case EventType::step_done: out = on_step_done(e); break;
    case EventType::step_failed: out = on_step_failed(e); break;
    case EventType::tick: out = on_tick(e); break;
  }
  // The driver persists the data as it is after this event, so one persist is enough, and it
  // comes before everything else: nothing happens that the state file does not know of.
  auto is_persist = [](const Action& a) { return a.type == ActionType::persist; };
  if (std::any_of(out.actions.begin(), out.actions.end(), is_persist)) {
    std::erase_if(out.actions, is_persist);
    out.actions.insert(out.actions.begin(), action(ActionType::persist));
  }
  return out;
}

Outcome Machine::on_probe(const Event& e) {
  return e.side == Side::primary ? on_primary_probe(e) : on_standby_probe(e);
}

Outcome Machine::on_standby_probe(const Event& e) {
  Outcome out;
  bool jump = data_.last_standby_probe && is_clock_jump(*data_.last_standby_probe, e.at);
  data_.last_standby_probe = e.at;
  if (jump) {
    data_.standby_failures = 0;
    if (!e.ok) {
      out.reason = "clock jump: this probe round is not counted";
      return out;
    }
  }
  if (e.ok) {
    data_.standby_failures = 0;
    ++data_.standby_oks;
    if (!data_.standby_up || (!*data_.standby_up && data_.standby_oks >= settings_.recoveries)) {
      data_.standby_up = true;
    }
  } else {
    data_.standby_oks = 0;
    ++data_.standby_failures;
    if (!data_.standby_up || (*data_.standby_up && data_.standby_failures >= settings_.failures)) {
      data_.standby_up = false;
    }
  }
  return out;
}

Outcome Machine::on_primary_probe(const Event& e) {
  Outcome out;
  bool jump = data_.last_primary_probe && is_clock_jump(*data_.last_primary_probe, e.at);
  data_.last_primary_probe = e.at;
  if (e.lag) data_.last_lag = e.lag;
  if (jump) {
    ++data_.clock_jumps;
    data_.primary_failures = 0;
    auto entry = event_entry("clock_jump", e.at);
    entry["probe_ok"] = e.ok;
    out.actions.push_back(action(ActionType::log_event, std::move(entry)));
    if (!e.ok) {
      out.reason = "clock jump: this probe round is not counted";
      return out;
    }
  }
  bool was_up = data_.primary_up.value_or(false);
  if (e.ok) {
    data_.primary_failures = 0;
    ++data_.primary_oks;
    if (!data_.primary_up || (!*data_.primary_up && data_.primary_oks >= settings_.recoveries)) {
      data_.primary_up = true;
    }
  } else {
    data_.primary_oks = 0;
    ++data_.primary_failures;
    if (!data_.primary_up || (*data_.primary_up && data_.primary_failures >= settings_.failures)) {
      data_.primary_up = false;
    }
  }

  switch (data_.state) {
    case GroupState::replicating:
      if (e.ok) return out;
      enter(out, GroupState::suspect, e.at, "primary probe failing");
      if (data_.primary_failures >= settings_.failures) {
        auto more = try_automatic_failover(e);
        out.actions.insert(out.actions.end(), more.actions.begin(), more.actions.end());
        out.reason = more.reason;
        out.decision = more.decision;
      }
      return out;
    case GroupState::suspect:
      if (e.ok) {
        if (data_.primary_oks >= settings_.recoveries) {
          data_.witness_pending = false;
          enter(out, GroupState::replicating, e.at, "primary answers again");
        }
        return out;
      }
      if (data_.primary_failures >= settings_.failures) return try_automatic_failover(e);
      return out;
    case GroupState::blocked:
      if (e.ok && data_.primary_oks >= settings_.recoveries && data_.active == Side::primary) {
        enter(out, GroupState::replicating, e.at, "primary answers again");
      }
      return out;
    case GroupState::failed_over:
      if (e.ok && *data_.primary_up && !was_up) {
        auto entry = event_entry("old_primary_back", e.at);
        out.actions.push_back(action(ActionType::log_event, std::move(entry)));
      }
      if (*data_.primary_up && !data_.reverse_running) {
        data_.reverse_running = true;
        out.actions.push_back(action(ActionType::persist));
        out.actions.push_back(action(ActionType::start_reverse, {{"report_unreplicated", true}}));
      }
      {
        auto more = try_automatic_failback(e);
        out.actions.insert(out.actions.end(), more.actions.begin(), more.actions.end());
        if (more.decision == DecisionKind::started) out.decision = more.decision;
      }
      return out;
    case GroupState::failing_over:
    case GroupState::failing_back:
      return out;
  }
  return out;
}

Outcome Machine::try_automatic_failover(const Event& e) {
  Outcome out;
  if (settings_.mode != FailoverMode::automatic) {
    out.reason = "primary down; mode manual: waiting for an operator";
    if (data_.primary_failures == settings_.failures) {
      auto entry = event_entry("primary_down", e.at);
      entry["reason"] = out.reason;
      out.actions.push_back(action(ActionType::log_event, std::move(entry)));
    }
    return out;
  }
  if (!e.mirror_broken) {
    // Holistic detection: the probe fails but replication from that primary still works, so
    // the cluster is serving; more likely the probe's own path is broken.
    out.reason = "primary probe failing but its mirrors still replicate: not failing over";
    if (data_.primary_failures == settings_.failures) {
      auto entry = event_entry("holistic_veto", e.at);
      entry["reason"] = out.reason;
      out.actions.push_back(action(ActionType::log_event, std::move(entry)));
    }
    return out;
  }
  if (settings_.witnesses > 0) {
    if (!data_.witness_pending) {
      data_.witness_pending = true;
      out.actions.push_back(action(ActionType::query_witnesses));
    }
    out.reason = "asking the witnesses";
    return out;
  }
  std::string why;
  if (!failover_check(true, false, why)) {
    enter(out, GroupState::blocked, e.at, "automatic failover refused: " + why);
    out.decision = DecisionKind::refused;
    out.reason = why;
    return out;
  }
  Event trigger = e;
  trigger.reason = fmt::format("primary down ({} failed probes)", data_.primary_failures);
  start_switch(out, SwitchKind::failover, trigger, true);
  return out;
}

Outcome Machine::on_witnesses(const Event& e) {
  Outcome out;
  if (!data_.witness_pending) {
    out.reason = "no witness query pending";
    return out;
  }
  data_.witness_pending = false;
  if (data_.state != GroupState::suspect || data_.primary_failures < settings_.failures) {
    out.reason = "witness verdict ignored: the primary recovered";
    return out;
  }
  // A strict majority of the configured witnesses must confirm the primary is down; one that
  // did not answer does not confirm.
  if (e.agree * 2 <= settings_.witnesses) {
    auto why = fmt::format("witnesses did not agree ({} of {} confirm, {} answered)", e.agree,
                           settings_.witnesses, e.answered);
    enter(out, GroupState::blocked, e.at, "automatic failover refused: " + why);
    out.decision = DecisionKind::refused;
    out.reason = why;
    return out;
  }
  std::string why;
  if (!failover_check(true, false, why)) {
    enter(out, GroupState::blocked, e.at, "automatic failover refused: " + why);
    out.decision = DecisionKind::refused;
    out.reason = why;
    return out;
  }
  Event trigger = e;
  trigger.reason = fmt::format("primary down ({} failed probes, {} of {} witnesses agree)",
                               data_.primary_failures, e.agree, settings_.witnesses);
  start_switch(out, SwitchKind::failover, trigger, true);
  return out;
}

bool Machine::failover_check(bool automatic, bool force, std::string& why_not) const {
  switch (data_.state) {
    case GroupState::failing_over:
    case GroupState::failing_back:
      why_not = fmt::format("a {} is already running (epoch {})",
                            data_.state == GroupState::failing_over ? "failover" : "failback",
                            data_.epoch);
      return false;
    case GroupState::failed_over:
      why_not = fmt::format("already failed over (epoch {}); use failback", data_.epoch);
      return false;
    case GroupState::replicating:
    case GroupState::suspect:
    case GroupState::blocked:
      break;
  }
  if (automatic) {
    if (settings_.mode != FailoverMode::automatic) {
      why_not = "mode is manual";
      return false;
    }
    if (data_.state != GroupState::suspect) {
      why_not = fmt::format("state is {}, not suspect", to_string(data_.state));
      return false;
    }
    if (data_.primary_failures < settings_.failures) {
      why_not = fmt::format("only {} of {} probes failed", data_.primary_failures,
                            settings_.failures);
      return false;
    }
  }
  if (force) return true;
  if (!data_.standby_up) {
    why_not = "the standby has not answered a probe yet (use --force to fail over anyway)";
    return false;
  }
  if (!*data_.standby_up) {
    why_not = "the standby does not answer its probes (use --force to fail over anyway)";
    return false;
  }
  if (data_.last_lag && *data_.last_lag > settings_.max_lag) {
    why_not = fmt::format(
        "last known replication lag {} exceeds max_lag {} (use --force to accept losing it)",
        seconds_text(*data_.last_lag), seconds_text(settings_.max_lag));
    return false;
  }
  return true;
}

bool Machine::failback_check(bool automatic, bool force, Instant now,
                             std::string& why_not) const {
  switch (data_.state) {
    case GroupState::failing_over:
    case GroupState::failing_back:
      why_not = fmt::format("a {} is already running (epoch {})",
                            data_.state == GroupState::failing_over ? "failover" : "failback",
                            data_.epoch);
      return false;
    case GroupState::replicating:
    case GroupState::suspect:
    case GroupState::blocked:
      why_not = fmt::format("not failed over (state {})", to_string(data_.state));
      return false;
    case GroupState::failed_over:
      break;
  }
  if (!data_.primary_up.value_or(false)) {
    why_not = "the old primary does not answer its probes yet";
    return false;
  }
  if (!data_.reverse_running) {
    why_not = "reverse replication has not started yet";
    return false;
  }
  if (automatic) {
    if (settings_.mode != FailoverMode::automatic || !settings_.auto_failback) {
      why_not = "automatic failback is not configured";
      return false;
    }
    if (now.steady - data_.switched_steady < settings_.hold_down) {
      why_not = fmt::format("within hold_down {}", seconds_text(settings_.hold_down));
      return false;
    }
  }
  (void)force;  // force only relaxes the drain (checked by the driver), never these conditions
  return true;
}

void Machine::start_switch(Outcome& out, SwitchKind kind, const Event& e, bool automatic) {
  ++data_.epoch;
  SwitchRecord r;
  r.kind = kind;
  r.epoch = data_.epoch;
  r.automatic = automatic;
  r.force = e.force;
  r.reason = e.reason;
  r.started_at = e.at.wall;
  r.lag_at_trigger = data_.last_lag;
  data_.current = std::move(r);
  data_.step_index = 0;
  data_.witness_pending = false;
  GroupState next = kind == SwitchKind::failover ? GroupState::failing_over
                                                 : GroupState::failing_back;
  std::string why = fmt::format("{} {} (epoch {}){}{}", automatic ? "automatic" : "manual",
                                to_string(kind), data_.epoch, e.reason.empty() ? "" : ": ",
                                e.reason);
  enter(out, next, e.at, why);
  out.actions.push_back(run_step(steps()[0], false));
  out.decision = DecisionKind::started;
  out.reason = why;
}

Outcome Machine::on_request_failover(const Event& e) {
  Outcome out;
  std::string why;
  if (!failover_check(false, e.force, why)) {
    out.decision = DecisionKind::refused;
    out.reason = why;
    auto entry = event_entry("failover_refused", e.at);
    entry["reason"] = why;
    entry["request_reason"] = e.reason;
    entry["force"] = e.force;
    out.actions.push_back(action(ActionType::log_event, std::move(entry)));
    return out;
  }
  start_switch(out, SwitchKind::failover, e, false);
  return out;
}

Outcome Machine::on_request_failback(const Event& e) {
  Outcome out;
  std::string why;
  if (!failback_check(false, e.force, e.at, why)) {
    out.decision = DecisionKind::refused;
    out.reason = why;
    auto entry = event_entry("failback_refused", e.at);
    entry["reason"] = why;
    out.actions.push_back(action(ActionType::log_event, std::move(entry)));
    return out;
  }
  start_switch(out, SwitchKind::failback, e, false);
  return out;
}

Outcome Machine::try_automatic_failback(const Event& e) {
  Outcome out;
  if (data_.state != GroupState::failed_over) return out;
  if (settings_.mode != FailoverMode::automatic || !settings_.auto_failback) return out;
  std::string why;
  if (!failback_check(true, false, e.at, why)) {
    out.reason = why;
    return out;
  }
  Event trigger = e;
  trigger.force = false;
  trigger.reason = "old primary healthy and hold_down passed";
  start_switch(out, SwitchKind::failback, trigger, true);
  return out;
}

Outcome Machine::on_tick(const Event& e) { return try_automatic_failback(e); }

Outcome Machine::on_step_done(const Event& e) {
  Outcome out;
  bool switching =
      data_.state == GroupState::failing_over || data_.state == GroupState::failing_back;
  if (!switching || !data_.current || data_.step_index >= steps().size() ||
      steps()[data_.step_index] != e.step) {
    out.reason = fmt::format("stale step result '{}' ignored", to_string(e.step));
    return out;
  }
  const auto& list = steps();
  bool failover = data_.current->kind == SwitchKind::failover;
  StepRecord rec;
  rec.step = e.step;
  rec.ok = true;
  rec.duration_ms = e.duration.count();
  rec.detail = e.detail;
  data_.current->steps.push_back(rec);
  if (e.step == Step::switch_clients) data_.active = failover ? Side::standby : Side::primary;
  ++data_.step_index;

  auto entry = event_entry("step", e.at);
  entry["step"] = to_string(e.step);
  entry["ok"] = true;
  entry["duration_ms"] = rec.duration_ms;
  entry["detail"] = e.detail;

  if (data_.step_index < list.size()) {
    out.actions.push_back(action(ActionType::persist));
    out.actions.push_back(action(ActionType::log_event, std::move(entry)));
    out.actions.push_back(run_step(list[data_.step_index], false));
    out.decision = DecisionKind::ignored;
    return out;
  }
  // Completed.
  data_.current->finished_at = e.at.wall;
  data_.current->outcome = "completed";
  data_.switched_at = e.at.wall;
  data_.switched_steady = e.at.steady;
  data_.step_index = 0;
  data_.primary_failures = 0;
  std::vector<Action> after;
  if (failover) {
    data_.reverse_running = false;
    if (data_.primary_up.value_or(false)) {
      // Planned switchover (or the primary is back already): reverse replication now.
      data_.reverse_running = true;
      after.push_back(action(ActionType::start_reverse, {{"report_unreplicated", true}}));
    }
  } else {
    data_.reverse_running = false;
  }
  out.actions.push_back(action(ActionType::log_event, std::move(entry)));
  enter(out, failover ? GroupState::failed_over : GroupState::replicating, e.at,
        fmt::format("{} completed (epoch {})", to_string(data_.current->kind), data_.epoch));
  out.actions.insert(out.actions.end(), after.begin(), after.end());
  out.reason = data_.reason;
  return out;
}

Outcome Machine::on_step_failed(const Event& e) {
  Outcome out;
  bool switching =
      data_.state == GroupState::failing_over || data_.state == GroupState::failing_back;
  if (!switching || !data_.current || data_.step_index >= steps().size() ||
      steps()[data_.step_index] != e.step) {
    out.reason = fmt::format("stale step result '{}' ignored", to_string(e.step));
    return out;
  }
  const auto& list = steps();
  bool failover = data_.current->kind == SwitchKind::failover;
  StepRecord rec;
  rec.step = e.step;
  rec.ok = false;
  rec.duration_ms = e.duration.count();
  rec.detail = e.detail;
  rec.detail["error"] = e.reason;
  data_.current->steps.push_back(rec);

  auto entry = event_entry("step", e.at);
  entry["step"] = to_string(e.step);
  entry["ok"] = false;
  entry["error"] = e.reason;
  entry["duration_ms"] = rec.duration_ms;

  // Once clients were told to switch there is no way back: such a step is retried.
  bool can_abort = data_.step_index < index_of(list, Step::switch_clients);
  if (!e.abort || !can_abort) {
    entry["retry"] = true;
    out.actions.push_back(action(ActionType::persist));
    out.actions.push_back(action(ActionType::log_event, std::move(entry)));
    out.actions.push_back(run_step(e.step, true));
    out.reason = e.reason;
    return out;
  }
  bool mirrors_stopped = data_.step_index >= index_of(list, Step::stop_mirrors);
  data_.current->finished_at = e.at.wall;
  data_.current->outcome = fmt::format("aborted at {}: {}", to_string(e.step), e.reason);
  data_.step_index = 0;
  out.actions.push_back(action(ActionType::log_event, std::move(entry)));
  if (failover) {
    data_.active = Side::primary;
    enter(out, GroupState::blocked, e.at,
          fmt::format("failover aborted at {}: {}", to_string(e.step), e.reason));
    if (mirrors_stopped) out.actions.push_back(action(ActionType::resume_forward));
  } else {
    data_.active = Side::standby;
    enter(out, GroupState::failed_over, e.at,
          fmt::format("failback aborted at {}: {}", to_string(e.step), e.reason));
    if (mirrors_stopped) {
      out.actions.push_back(action(ActionType::start_reverse, {{"report_unreplicated", false}}));
    }
  }
  out.decision = DecisionKind::refused;
  out.reason = data_.reason;
  return out;
}

}  // namespace mqdr::failover
