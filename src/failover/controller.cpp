// The failover driver (include/mqdr/failover.hpp): probes, the machine, and the switch steps.
//
// Threads: one per group. It runs the probe rounds and executes the machine's actions (steps,
// witness queries, mirror starts). Admin threads only feed requests to the machine under the
// group's mutex; whatever the machine answers is persisted (and logged) inline before the call
// returns, and the rest is queued for the group's thread. So the state file always knows of an
// action before it happens.

#include "mqdr/failover.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "failover/clients.hpp"
#include "failover/hooks.hpp"
#include "failover/state_store.hpp"
#include "mqdr/failover_machine.hpp"

namespace mqdr {

using failover::Action;
using failover::ActionType;
using failover::Event;
using failover::GroupState;
using failover::Instant;
using failover::Side;
using failover::Step;
using failover::SwitchKind;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

class RealClock : public FailoverClock {
 public:
  std::chrono::steady_clock::time_point steady() const override {
    return std::chrono::steady_clock::now();
  }
  std::chrono::system_clock::time_point wall() const override {
    return std::chrono::system_clock::now();
  }
};

const char* kind_name(ClusterKind kind) {
  switch (kind) {
    case ClusterKind::kafka: return "kafka";
    case ClusterKind::nats: return "nats";
    case ClusterKind::rabbitmq: return "rabbitmq";
  }
  return "unknown";
}

nlohmann::json lag_json(const Lag& lag) {
  return {{"records", lag.records}, {"seconds", lag.seconds}};
}

// Outcome of one step as the driver saw it; nullopt from a step means "interrupted by stop".
struct StepResult {
  bool ok = true;
  bool abort = false;
  std::string error;
  nlohmann::json detail = nlohmann::json::object();
};

struct ClusterHealth {
  std::string name;
  std::string role;  // primary | standby
  bool probed = false;
  bool has_probe = false;
  bool up = false;
  double latency_ms = 0;
  std::string message;
  std::uint64_t probes = 0;
  std::uint64_t failures = 0;
  std::chrono::system_clock::time_point at{};
};

}  // namespace

FailoverClock& real_failover_clock() {
  static RealClock clock;
  return clock;
}

const char* to_string(Decision::Kind kind) {
  switch (kind) {
    case Decision::Kind::started: return "started";
    case Decision::Kind::refused: return "refused";
    case Decision::Kind::not_found: return "not_found";
  }
  return "unknown";
}

struct FailoverController::Impl {
  struct Group {
    FailoverGroupConfig cfg;
    failover::Machine machine;
    std::vector<MirrorConfig> forward;  // mirrors primary -> standby of this group's pairs
    mutable std::mutex mu;
    std::condition_variable_any cv;
    std::deque<Action> pending;                     // for the group's thread
    bool executing = false;                         // the thread runs an action now
    std::map<std::string, ClusterHealth> health;    // by cluster name
    std::map<std::string, ProbePtr> probes;         // group thread only
    std::vector<std::string> failing_primaries;     // of the last round
    std::optional<std::chrono::system_clock::time_point> first_failure;  // current outage
    std::string persist_error;
    std::vector<std::future<bool>> background;      // mirror stops not waited for
    std::uint64_t failovers = 0;
    std::uint64_t failbacks = 0;
    std::jthread thread;

    Group(FailoverGroupConfig c)
        : cfg(std::move(c)), machine(cfg.name, failover::MachineSettings::from(cfg)) {}
  };

  std::shared_ptr<const Config> config;
  const BrokerRegistry& registry;
  MirrorControl mirrors;
  std::filesystem::path state_dir;
  FailoverOptions options;
  FailoverClock& clock;
  std::unique_ptr<failover::StateStore> store;
  std::vector<std::unique_ptr<Group>> groups;
  bool started = false;

  Impl(std::shared_ptr<const Config> c, const BrokerRegistry& r, MirrorControl m,
       std::filesystem::path dir, FailoverOptions o)
      : config(std::move(c)),
        registry(r),
        mirrors(std::move(m)),
        state_dir(std::move(dir)),
        options(o),
        clock(o.clock ? *o.clock : real_failover_clock()) {}

  Instant now() const { return Instant{clock.steady(), clock.wall()}; }

  Group* find(const std::string& name) const {
    for (const auto& g : groups) {
      if (g->cfg.name == name) return g.get();
    }
    return nullptr;
  }

  // ---- persistence and actions (caller holds g.mu)

  void persist_locked(Group& g) {
    try {
      store->save(g.cfg.name, g.machine.to_json());
      g.persist_error.clear();
    } catch (const std::exception& e) {
      g.persist_error = e.what();
      throw;
    }
  }

  void log_event_locked(Group& g, const nlohmann::json& entry) {
    try {
      store->append_event(g.cfg.name, entry);
    } catch (const std::exception& e) {
      spdlog::error("group={} cannot append to the event log: {}", g.cfg.name, e.what());
    }
  }

  // Feeds one event; persists and logs inline, queues the rest. Returns the machine's outcome.
  failover::Outcome apply_locked(Group& g, const Event& e) {
    auto before = g.machine.data().state;
    auto out = g.machine.handle(e);
    for (auto& a : out.actions) {
      if (a.type == ActionType::persist) {
        try {
          persist_locked(g);
        } catch (const std::exception& ex) {
          // Nothing may happen that the state file does not know of.
          spdlog::critical("group={} cannot persist its state, actions dropped: {}", g.cfg.name,
                           ex.what());
          return out;
        }
      } else if (a.type == ActionType::log_event) {
        log_event_locked(g, a.detail);
      } else {
        g.pending.push_back(a);
      }
    }
    auto after = g.machine.data().state;
    if (before != after) {
      spdlog::info("group={} state {} -> {} epoch={}: {}", g.cfg.name, failover::to_string(before),
                   failover::to_string(after), g.machine.data().epoch, g.machine.data().reason);
      if (after == GroupState::failed_over && before == GroupState::failing_over) ++g.failovers;
      if (after == GroupState::replicating && before == GroupState::failing_back) ++g.failbacks;
    }
    if (!g.pending.empty()) g.cv.notify_all();
    return out;
  }

  failover::Outcome apply(Group& g, const Event& e) {
    std::lock_guard lock(g.mu);
    return apply_locked(g, e);
  }

  // ---- construction

  std::uint64_t epoch_from_clients_file(const FailoverGroupConfig& cfg) {
    if (cfg.clients.file.empty() || cfg.clients.format != ClientsFormat::json) return 0;
    std::ifstream in(cfg.clients.file);
    if (!in) return 0;
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return 0;
    auto epoch = j.value("epoch", nlohmann::json());
    return epoch.is_number_unsigned() ? epoch.get<std::uint64_t>() : 0;
  }

  void load_group(Group& g) {
    auto t = now();
    auto loaded = store->load(g.cfg.name);
    failover::GroupData data;
    data.since = t.wall;
    std::string damaged;
    if (loaded.state) {
      try {
        data = failover::Machine::from_json(*loaded.state);
      } catch (const std::exception& e) {
        damaged = fmt::format("{}: {}", store->state_file(g.cfg.name).string(), e.what());
      }
    } else if (!loaded.error.empty()) {
      damaged = loaded.error;
    }
    if (!damaged.empty()) {
      // Its state is unknown: nothing automatic happens until an operator decides. The epoch
      // continues from the clients file so that the fencing token never goes back.
      std::string moved;
      try {
        moved = store->quarantine(g.cfg.name).string();
      } catch (const std::exception& e) {
        moved = std::string("(could not move it aside: ") + e.what() + ")";
      }
      spdlog::error("group={} state file unusable, group blocked: {}; kept as {}", g.cfg.name,
                    damaged, moved);
      data = failover::GroupData{};
      data.state = GroupState::blocked;
      data.since = t.wall;
      data.epoch = epoch_from_clients_file(g.cfg);
      data.reason = fmt::format("state file unusable ({}); kept as {}; check the clusters, then "
                                "fail over or wait for the primary",
                                damaged, moved);
    }
    std::lock_guard lock(g.mu);
    auto actions = g.machine.restore(std::move(data), t);
    persist_locked(g);
    for (auto& a : actions) {
      if (a.type != ActionType::persist && a.type != ActionType::log_event) g.pending.push_back(a);
    }
    auto entry = nlohmann::json{{"at", failover::format_time(t.wall)},
                                {"group", g.cfg.name},
                                {"event", "loaded"},
                                {"state", failover::to_string(g.machine.data().state)},
                                {"epoch", g.machine.data().epoch}};
    if (!damaged.empty()) entry["error"] = damaged;
    log_event_locked(g, entry);
    for (const auto& pair : g.cfg.pairs) {
      for (auto [name, role] : {std::pair{pair.primary, "primary"}, {pair.standby, "standby"}}) {
        auto& h = g.health[name];
        h.name = name;
        h.role = role;
      }
    }
  }

  void build(const Config& cfg) {
    store = std::make_unique<failover::StateStore>(state_dir / "failover");
    for (const auto& gc : cfg.failover) {
      auto g = std::make_unique<Group>(gc);
      for (const auto& m : cfg.mirrors) {
        for (const auto& pair : gc.pairs) {
          if (m.source == pair.primary && m.target == pair.standby) g->forward.push_back(m);
        }
      }
      load_group(*g);
      groups.push_back(std::move(g));
    }
  }

  // ---- helpers for steps

  const ClusterConfig* cluster(const std::string& name) const {
    auto it = config->clusters.find(name);
    return it == config->clusters.end() ? nullptr : &it->second;
  }

  static MirrorConfig reverse_of(const MirrorConfig& m) {
    MirrorConfig r = m;
    r.name = opposite_mirror_name(m.name);
    std::swap(r.source, r.target);
    return r;
  }

  MirrorOpsPtr make_ops(const MirrorConfig& m) const {
    const auto* kind = registry.find(m.kind);
    if (!kind || !kind->make_mirror_ops) return nullptr;
    const auto* src = cluster(m.source);
    const auto* dst = cluster(m.target);
    if (!src || !dst) return nullptr;
    MirrorContext ctx;
    ctx.config = config;
    ctx.mirror = m;
    ctx.source = *src;
    ctx.target = *dst;
    ctx.stats = std::make_shared<WorkerStats>(m.name, kind_name(m.kind));
    ctx.state_dir = state_dir / "mirrors" / m.name;
    std::error_code ec;
    std::filesystem::create_directories(ctx.state_dir, ec);
    return kind->make_mirror_ops(ctx);
  }

  std::optional<StatsSnapshot> stats(const std::string& mirror) const {
    if (!mirrors.stats) return std::nullopt;
    try {
      return mirrors.stats(mirror);
    } catch (const std::exception& e) {
      spdlog::warn("mirror={} stats unavailable: {}", mirror, e.what());
      return std::nullopt;
    }
  }

  static bool broken(const std::optional<StatsSnapshot>& s) {
    return !s || s->state != "running" || !s->last_error.empty();
  }

  std::map<std::string, std::string> hook_env(const Group& g, const std::string& state,
                                              Side active, std::uint64_t epoch,
                                              const std::string& hook) const {
    return {{"MQDR_GROUP", g.cfg.name},
            {"MQDR_EPOCH", std::to_string(epoch)},
            {"MQDR_STATE", state},
            {"MQDR_ACTIVE", failover::to_string(active)},
            {"MQDR_CLIENTS_FILE", g.cfg.clients.file.string()},
            {"MQDR_HOOK", hook}};
  }

  // Sleeps up to `d`; false when stopped.
  bool pause(Group& g, std::stop_token st, Duration d) {
    std::unique_lock lock(g.mu);
    return !g.cv.wait_for(lock, st, d, [] { return false; }) && !st.stop_requested();
  }

  Duration retry_interval(const Group& g) const {
    return options.retry_interval.count() > 0 ? options.retry_interval : g.cfg.health.interval;
  }

  bool primary_answers(const Group& g) {
    std::lock_guard lock(g.mu);
    return g.machine.data().primary_up.value_or(false) && g.failing_primaries.empty();
  }

  // ---- steps

  struct SwitchInfo {
    SwitchKind kind = SwitchKind::failover;
    std::uint64_t epoch = 0;
    bool force = false;
    Side active = Side::primary;
    std::chrono::system_clock::time_point started_at{};
    std::optional<Duration> lag_at_trigger;
    nlohmann::json steps = nlohmann::json::array();
  };

  SwitchInfo switch_info(const Group& g) const {
    std::lock_guard lock(g.mu);
    SwitchInfo s;
    const auto& d = g.machine.data();
    s.epoch = d.epoch;
    s.active = d.active;
    if (d.current) {
      s.kind = d.current->kind;
      s.force = d.current->force;
      s.started_at = d.current->started_at;
      s.lag_at_trigger = d.current->lag_at_trigger;
      s.steps = failover::to_json(*d.current)["steps"];
    }
    return s;
  }

  std::vector<MirrorConfig> leaving_mirrors(const Group& g, SwitchKind kind) const {
    if (kind == SwitchKind::failover) return g.forward;
    std::vector<MirrorConfig> r;
    for (const auto& m : g.forward) r.push_back(reverse_of(m));
    return r;
  }

  std::optional<StepResult> step_fence(Group& g, const SwitchInfo& s) {
    StepResult r;
    nlohmann::json hooks = nlohmann::json::array();
    const char* state = s.kind == SwitchKind::failover ? "failing_over" : "failing_back";
    std::string first_error;
    for (const auto& hook : g.cfg.fence_hooks) {
      auto res = failover::run_hook(hook, hook_env(g, state, s.active, s.epoch, "fence"),
                                    g.cfg.clients.hook_timeout);
      hooks.push_back(res.to_json());
      if (!res.ok) {
        spdlog::error("group={} fence hook {} failed: {}", g.cfg.name, hook, res.error);
        if (first_error.empty()) first_error = fmt::format("fence hook {} {}", hook, res.error);
      } else {
        spdlog::info("group={} fence hook {} ok ({} ms)", g.cfg.name, hook, res.duration_ms);
      }
    }
    r.detail["hooks"] = hooks;
    if (!first_error.empty()) {
      if (s.force) {
        r.detail["forced"] = true;
        r.detail["warning"] = first_error + "; continued because of --force";
        return r;
      }
      r.ok = false;
      r.abort = true;
      r.error = first_error + "; not fenced, so not switching (use --force to switch anyway)";
    }
    return r;
  }

  Lag current_lag(const MirrorConfig& m, MirrorOps* ops, Duration timeout, std::string& how) {
    if (ops) {
      try {
        how = "mirror_ops";
        return ops->lag(timeout);
      } catch (const std::exception& e) {
        how = std::string("mirror_ops failed: ") + e.what();
      }
    }
    auto st = stats(m.name);
    how = "worker_stats";
    if (!st) return {};
    return Lag{st->lag_records, st->lag_seconds};
  }

  std::optional<StepResult> step_drain(Group& g, const SwitchInfo& s, std::stop_token st) {
    StepResult r;
    bool failover_drain = s.kind == SwitchKind::failover;
    auto list = leaving_mirrors(g, s.kind);
    if (failover_drain && !primary_answers(g)) {
      r.detail["skipped"] = "the primary does not answer: nothing can be drained";
      nlohmann::json per = nlohmann::json::object();
      for (const auto& m : list) {
        auto snap = stats(m.name);
        per[m.name] = {{"residual", snap ? lag_json(Lag{snap->lag_records, snap->lag_seconds})
                                         : lag_json(Lag{})},
                       {"drained", false}};
      }
      r.detail["mirrors"] = per;
      return r;
    }
    struct Entry {
      MirrorConfig m;
      MirrorOpsPtr ops;
      Lag first, last;
      bool drained = false;
      bool gave_up = false;
      std::string how;
    };
    std::vector<Entry> entries;
    for (const auto& m : list) {
      Entry e;
      e.m = m;
      try {
        e.ops = make_ops(m);
      } catch (const std::exception& ex) {
        spdlog::warn("mirror={} cannot open failover operations: {}", m.name, ex.what());
      }
      entries.push_back(std::move(e));
    }
    auto deadline = clock.steady() + g.cfg.drain_timeout;
    bool first_round = true;
    while (true) {
      bool all = true;
      for (auto& e : entries) {
        if (e.drained || e.gave_up) continue;
        e.last = current_lag(e.m, e.ops.get(), g.cfg.health.timeout, e.how);
        if (first_round) e.first = e.last;
        // A reverse mirror that has not reached `running` yet has not read anything: its zero
        // lag would mean nothing.
        bool worker_running = failover_drain;
        if (!failover_drain) {
          auto snap = stats(e.m.name);
          worker_running = snap && snap->state == "running";
        }
        if (e.last.records == 0 && worker_running) {
          e.drained = true;
        } else {
          all = false;
        }
      }
      first_round = false;
      if (all || clock.steady() >= deadline) break;
      if (failover_drain && !primary_answers(g)) {
        r.detail["interrupted"] = "the primary stopped answering during the drain";
        break;
      }
      if (!pause(g, st, std::min<Duration>(g.cfg.health.interval / 4 + Duration(10),
                                           Duration(250)))) {
        return std::nullopt;
      }
    }
    nlohmann::json per = nlohmann::json::object();
    std::string lagging;
    for (const auto& e : entries) {
      per[e.m.name] = {{"before", lag_json(e.first)},
                       {"residual", lag_json(e.last)},
                       {"drained", e.drained},
                       {"lag_source", e.how}};
      if (!e.drained && lagging.empty()) {
        lagging = fmt::format("mirror {} still lags {} records", e.m.name, e.last.records);
      }
    }
    r.detail["mirrors"] = per;
    if (!failover_drain && !lagging.empty()) {
      // Failing back with a lagging reverse mirror would lose what was written to the standby.
      if (s.force) {
        r.detail["forced"] = true;
        r.detail["warning"] = lagging + "; continued because of force";
        return r;
      }
      r.ok = false;
      r.abort = true;
      r.error = fmt::format("{} after drain_timeout {} ms: failback aborted, nothing lost; retry "
                            "when the reverse mirror caught up",
                            lagging, g.cfg.drain_timeout.count());
    }
    return r;
  }

  std::optional<StepResult> step_stop_mirrors(Group& g, const SwitchInfo& s) {
    StepResult r;
    nlohmann::json per = nlohmann::json::object();
    // A worker whose source died may take long to stop (its client waits for the dead cluster).
    // Then there is nothing left to read from it, so the switch does not wait for more than
    // health.timeout: the stop goes on in the background (joined before the controller ends).
    bool wait_all = s.kind == SwitchKind::failback || primary_answers(g);
    std::vector<std::pair<std::string, std::future<bool>>> stops;
    for (const auto& m : leaving_mirrors(g, s.kind)) {
      auto stop = mirrors.stop;
      auto name = m.name;
      stops.emplace_back(name, std::async(std::launch::async, [stop, name] {
                           try {
                             return stop ? stop(name) : false;
                           } catch (const std::exception& e) {
                             spdlog::error("mirror={} cannot be stopped: {}", name, e.what());
                             return false;
                           }
                         }));
    }
    // With the primary down a worker has nothing more to read: a short grace for what it still
    // writes to the target, then the switch goes on.
    auto deadline = std::chrono::steady_clock::now() +
                    std::min<Duration>(g.cfg.health.timeout, std::chrono::milliseconds(500));
    for (auto& [name, f] : stops) {
      if (!wait_all && f.wait_until(deadline) != std::future_status::ready) {
        per[name] = {{"stopped_in_time", false}, {"stopping_in_background", true}};
        spdlog::warn("group={} mirror={} still stopping (its source is down); not waiting",
                     g.cfg.name, name);
        std::lock_guard lock(g.mu);
        g.background.push_back(std::move(f));
        continue;
      }
      bool stopped = f.get();
      per[name] = {{"stopped_in_time", stopped}};
      spdlog::info("group={} mirror={} stopped (in time: {})", g.cfg.name, name, stopped);
    }
    r.detail["mirrors"] = per;
    return r;
  }

  std::optional<StepResult> step_promote(Group& g, const SwitchInfo& s, std::stop_token st) {
    StepResult r;
    nlohmann::json per = nlohmann::json::object();
    std::string first_error;
    for (const auto& m : leaving_mirrors(g, s.kind)) {
      nlohmann::json d = nlohmann::json::object();
      MirrorOpsPtr ops;
      try {
        ops = make_ops(m);
      } catch (const std::exception& e) {
        d["error"] = std::string("cannot open failover operations: ") + e.what();
      }
      if (!ops) {
        if (!d.contains("error")) {
          d["unchecked"] = fmt::format("no failover operations for kind {}", kind_name(m.kind));
        }
        per[m.name] = d;
        continue;
      }
      auto deadline = clock.steady() + g.cfg.drain_timeout;
      // Final position sync is best effort: the mirror synced positions all along, and with a
      // dead primary the last ones cannot be read.
      try {
        auto fs = ops->final_sync(g.cfg.drain_timeout);
        d["final_sync"] = fs.is_ok() ? "ok" : fs.message();
      } catch (const std::exception& e) {
        d["final_sync"] = std::string("failed: ") + e.what();
      }
      Status ps = Status::retry("not attempted");
      while (true) {
        try {
          auto left = duration_cast<milliseconds>(deadline - clock.steady());
          ps = ops->promote(std::max(left, Duration(100)));
        } catch (const std::exception& e) {
          ps = Status::fatal(e.what());
        }
        if (!ps.is_retry() || clock.steady() >= deadline) break;
        if (!pause(g, st, retry_interval(g))) return std::nullopt;
      }
      d["promote"] = ps.is_ok() ? "ok" : ps.message();
      if (!ps.is_ok() && first_error.empty()) {
        first_error = fmt::format("promote of mirror {} failed: {}", m.name, ps.message());
      }
      per[m.name] = d;
    }
    r.detail["mirrors"] = per;
    if (!first_error.empty()) {
      spdlog::error("group={} {}", g.cfg.name, first_error);
      if (s.force) {
        r.detail["warning"] = first_error + "; continued because of --force";
        return r;
      }
      r.ok = false;
      r.abort = true;
      r.error = first_error + " (use --force to switch anyway)";
    }
    return r;
  }

  std::optional<StepResult> step_verify(Group& g, const SwitchInfo& s) {
    StepResult r;
    nlohmann::json per = nlohmann::json::object();
    nlohmann::json unchecked = nlohmann::json::array();
    // With the side being left down only the other side can be read: keep that short, it is
    // on the way to the clients switch.
    bool source_up = s.kind == SwitchKind::failback || primary_answers(g);
    Duration deadline = source_up ? g.cfg.drain_timeout : g.cfg.health.timeout;
    r.detail["deadline_ms"] = deadline.count();
    struct Outcome {
      nlohmann::json detail;
      std::vector<std::string> unchecked;
    };
    // One mirror: compare, then release what it keeps on its source. Mirrors share nothing
    // here (each gets operations of its own), so they are verified side by side: the step
    // takes as long as the slowest mirror, not as long as all of them.
    auto verify_one = [&g, source_up, deadline, this](const MirrorConfig& m) {
      Outcome o;
      nlohmann::json& d = o.detail;
      if (!source_up) {
        // Nothing to compare against: the side being left does not answer. Trying would cost
        // a connection timeout per mirror on the way to the clients switch.
        d["unchecked"] = "the side being left is down";
        o.unchecked.push_back(m.name + ": the side being left is down");
        return o;
      }
      MirrorOpsPtr ops;
      try {
        ops = make_ops(m);
      } catch (const std::exception& e) {
        d["error"] = e.what();
      }
      if (!ops) {
        o.unchecked.push_back(fmt::format("{}: no failover operations for kind {}", m.name,
                                          kind_name(m.kind)));
        return o;
      }
      const auto verify_start = std::chrono::steady_clock::now();
      try {
        auto v = ops->verify(deadline);
        d = {{"equal", v.equal}, {"detail", v.detail}, {"unchecked", v.unchecked}};
        if (!v.first_difference.empty()) d["first_difference"] = v.first_difference;
        for (const auto& u : v.unchecked) o.unchecked.push_back(m.name + ": " + u);
        if (!v.equal) {
          spdlog::warn("group={} mirror={} verify found a difference: {}", g.cfg.name, m.name,
                       v.first_difference);
        }
      } catch (const std::exception& e) {
        d["error"] = e.what();
        o.unchecked.push_back(m.name + ": " + e.what());
      }
      d["verify_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - verify_start)
                           .count();
      // Verified and stopped for good in this direction: release what it keeps on its source
      // (when that side answers; otherwise when it returns, after the unreplicated report).
      const auto retire_start = std::chrono::steady_clock::now();
      try {
        d["released"] = ops->retire(deadline);
      } catch (const std::exception& e) {
        d["released"] = {{"error", e.what()}};
      }
      d["retire_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - retire_start)
                           .count();
      spdlog::info("group={} mirror={} verified in {} ms, released in {} ms", g.cfg.name, m.name,
                   d["verify_ms"].get<long long>(), d["retire_ms"].get<long long>());
      return o;
    };
    const auto mirrors = leaving_mirrors(g, s.kind);
    std::vector<std::future<Outcome>> running;
    running.reserve(mirrors.size());
    for (const auto& m : mirrors) running.push_back(std::async(std::launch::async, verify_one, m));
    for (std::size_t i = 0; i < mirrors.size(); ++i) {
      Outcome o = running[i].get();
      for (auto& u : o.unchecked) unchecked.push_back(std::move(u));
      per[mirrors[i].name] = std::move(o.detail);
    }
    r.detail["mirrors"] = per;
    r.detail["unchecked"] = unchecked;
    return r;
  }

  std::optional<StepResult> step_switch_clients(Group& g, const SwitchInfo& s) {
    StepResult r;
    bool to_standby = s.kind == SwitchKind::failover;
    failover::ClientsView view;
    view.epoch = s.epoch;
    view.state = to_standby ? "failed_over" : "replicating";
    view.standby_active = to_standby;
    view.switched_at = clock.wall();
    try {
      failover::write_clients_file(*config, g.cfg, view);
    } catch (const std::exception& e) {
      r.ok = false;
      r.error = std::string("cannot write the clients file: ") + e.what();
      return r;
    }
    r.detail["clients_file"] = g.cfg.clients.file.string();
    r.detail["switched_at"] = failover::format_time(view.switched_at);
    spdlog::info("group={} clients file {} switched to the {} (epoch {})", g.cfg.name,
                 g.cfg.clients.file.string(), to_standby ? "standby" : "primary", s.epoch);
    nlohmann::json hooks = nlohmann::json::array();
    for (const auto& hook : g.cfg.clients.hooks) {
      auto res = failover::run_hook(
          hook, hook_env(g, view.state, to_standby ? Side::standby : Side::primary, s.epoch,
                         "clients"),
          g.cfg.clients.hook_timeout);
      if (!res.ok) {
        // Reported, never blocking: the file is the source of truth for clients.
        spdlog::warn("group={} client hook {} failed: {}", g.cfg.name, hook, res.error);
      }
      hooks.push_back(res.to_json());
    }
    r.detail["hooks"] = hooks;
    return r;
  }

  std::optional<StepResult> step_resume(Group& g) {
    StepResult r;
    nlohmann::json started = nlohmann::json::array();
    for (const auto& m : g.forward) {
      try {
        if (mirrors.start) mirrors.start(m);
        started.push_back(m.name);
      } catch (const std::exception& e) {
        r.ok = false;
        r.error = fmt::format("cannot start mirror {}: {}", m.name, e.what());
        return r;
      }
    }
    r.detail["started"] = started;
    return r;
  }

  std::optional<StepResult> step_record(Group& g, const SwitchInfo& s) {
    StepResult r;
    // RTO: from the trigger (or the first failed probe of this outage) to the clients switched.
    std::optional<std::chrono::system_clock::time_point> switched;
    nlohmann::json residual = nlohmann::json::object();
    for (const auto& step : s.steps) {
      if (step.value("step", "") == "switch_clients" && step.value("ok", false)) {
        auto t = failover::parse_time(step["detail"].value("switched_at", ""));
        if (t && t->time_since_epoch().count() != 0) switched = *t;
      }
      if (step.value("step", "") == "drain" && step["detail"].contains("mirrors")) {
        for (const auto& [name, m] : step["detail"]["mirrors"].items()) {
          residual[name] = m.value("residual", nlohmann::json());
        }
      }
    }
    nlohmann::json summary = {{"kind", failover::to_string(s.kind)}, {"epoch", s.epoch}};
    summary["started_at"] = failover::format_time(s.started_at);
    if (switched) {
      summary["clients_switched_at"] = failover::format_time(*switched);
      summary["rto_from_trigger_ms"] = duration_cast<milliseconds>(*switched - s.started_at).count();
      std::optional<std::chrono::system_clock::time_point> first;
      {
        std::lock_guard lock(g.mu);
        first = g.first_failure;
      }
      if (s.kind == SwitchKind::failover && first && *first <= s.started_at) {
        summary["first_failed_probe_at"] = failover::format_time(*first);
        summary["rto_from_first_failure_ms"] =
            duration_cast<milliseconds>(*switched - *first).count();
      }
    }
    // RPO estimate: the lag the mirrors had when the switch started, and what remained unsent
    // after the drain (records accepted by the old primary that the standby does not have).
    summary["rpo"] = {{"lag_at_trigger_ms", s.lag_at_trigger ? nlohmann::json(s.lag_at_trigger->count())
                                                             : nlohmann::json()},
                      {"residual_lag", residual}};
    auto entry = summary;
    entry["at"] = failover::format_time(clock.wall());
    entry["group"] = g.cfg.name;
    entry["event"] = "switch_record";
    {
      std::lock_guard lock(g.mu);
      log_event_locked(g, entry);
    }
    r.detail = summary;
    return r;
  }

  std::optional<StepResult> run_step(Group& g, Step step, std::stop_token st) {
    auto s = switch_info(g);
    switch (step) {
      case Step::fence: return step_fence(g, s);
      case Step::drain: return step_drain(g, s, st);
      case Step::stop_mirrors: return step_stop_mirrors(g, s);
      case Step::promote: return step_promote(g, s, st);
      case Step::verify: return step_verify(g, s);
      case Step::switch_clients: return step_switch_clients(g, s);
      case Step::resume: return step_resume(g);
      case Step::record: return step_record(g, s);
    }
    return StepResult{false, false, "unknown step", {}};
  }

  // ---- other actions

  void start_reverse(Group& g, bool report) {
    if (report) {
      nlohmann::json per = nlohmann::json::object();
      for (const auto& m : g.forward) {
        try {
          auto ops = make_ops(m);
          per[m.name] = ops ? ops->unreplicated(g.cfg.drain_timeout)
                            : nlohmann::json{{"unchecked", fmt::format(
                                                               "no failover operations for kind {}",
                                                               kind_name(m.kind))}};
          // Reported; now detached from what the reverse mirror will write on this side.
          if (ops && per[m.name].is_object()) {
            per[m.name]["released"] = ops->retire(g.cfg.drain_timeout);
          }
        } catch (const std::exception& e) {
          per[m.name] = {{"error", e.what()}};
        }
        spdlog::warn("group={} mirror={} held by the old primary but never replicated: {}",
                     g.cfg.name, m.name, per[m.name].dump());
      }
      std::lock_guard lock(g.mu);
      auto d = g.machine.data();
      nlohmann::json entry = {{"at", failover::format_time(clock.wall())},
                              {"group", g.cfg.name},
                              {"event", "unreplicated"},
                              {"epoch", d.epoch},
                              {"mirrors", per}};
      log_event_locked(g, entry);
      g.machine.set_unreplicated(per);
      try {
        persist_locked(g);
      } catch (const std::exception& e) {
        spdlog::error("group={} cannot persist: {}", g.cfg.name, e.what());
      }
    }
    for (const auto& m : g.forward) {
      auto r = reverse_of(m);
      try {
        if (mirrors.start) mirrors.start(r);
        spdlog::info("group={} reverse mirror {} started ({} -> {})", g.cfg.name, r.name, r.source,
                     r.target);
      } catch (const std::exception& e) {
        spdlog::error("group={} cannot start reverse mirror {}: {}", g.cfg.name, r.name, e.what());
      }
    }
  }

  void resume_forward(Group& g) {
    for (const auto& m : g.forward) {
      try {
        if (mirrors.start) mirrors.start(m);
        spdlog::info("group={} mirror={} resumed", g.cfg.name, m.name);
      } catch (const std::exception& e) {
        spdlog::error("group={} mirror={} cannot be resumed: {}", g.cfg.name, m.name, e.what());
      }
    }
  }

  static std::pair<std::string, std::string> split_url(const std::string& url) {
    auto scheme = url.find("://");
    auto path_at = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    if (path_at == std::string::npos) return {url, "/v1/status"};
    return {url.substr(0, path_at), url.substr(path_at)};
  }

  void query_witnesses(Group& g) {
    std::vector<std::string> failing;
    {
      std::lock_guard lock(g.mu);
      failing = g.failing_primaries;
    }
    int agree = 0, answered = 0;
    auto timeout = g.cfg.health.timeout;
    for (const auto& url : g.cfg.witnesses) {
      auto [base, path] = split_url(url);
      try {
        httplib::Client cli(base);
        auto secs = timeout.count() / 1000;
        auto usecs = (timeout.count() % 1000) * 1000;
        cli.set_connection_timeout(secs, usecs);
        cli.set_read_timeout(secs, usecs);
        auto res = cli.Get(path.c_str());
        if (!res || res->status != 200) {
          spdlog::warn("group={} witness {} did not answer", g.cfg.name, url);
          continue;
        }
        ++answered;
        auto j = nlohmann::json::parse(res->body, nullptr, false);
        // The witness agrees when it sees every primary cluster we see failing as down too.
        bool all_down = !failing.empty() && j.is_object();
        for (const auto& name : failing) {
          bool down = false;
          if (j.is_object() && j.contains("clusters") && j["clusters"].is_array()) {
            for (const auto& c : j["clusters"]) {
              if (c.value("name", "") == name && c.contains("up") && c["up"].is_boolean()) {
                down = !c["up"].get<bool>();
              }
            }
          }
          all_down = all_down && down;
        }
        if (all_down) ++agree;
        spdlog::info("group={} witness {} {}", g.cfg.name, url,
                     all_down ? "confirms the primary is down" : "does not confirm");
      } catch (const std::exception& e) {
        spdlog::warn("group={} witness {}: {}", g.cfg.name, url, e.what());
      }
    }
    apply(g, Event::witnesses(now(), agree, answered));
  }

  // ---- probing

  void ensure_probes(Group& g) {
    for (const auto& pair : g.cfg.pairs) {
      for (const auto& name : {pair.primary, pair.standby}) {
        if (g.probes.count(name)) continue;
        const auto* c = cluster(name);
        const auto* kind = c ? registry.find(c->kind) : nullptr;
        ProbePtr p;
        if (kind && kind->make_probe) {
          try {
            p = kind->make_probe(*c);
          } catch (const std::exception& e) {
            spdlog::warn("cluster={} cannot create its probe: {}", name, e.what());
          }
        }
        g.probes[name] = std::move(p);  // null: no probe for this kind (yet)
      }
    }
  }

  void probe_round(Group& g) {
    ensure_probes(g);
    auto timeout = g.cfg.health.timeout;
    std::map<std::string, std::future<ProbeResult>> futures;
    for (auto& [name, probe] : g.probes) {
      if (!probe) continue;
      Probe* p = probe.get();
      futures[name] = std::async(std::launch::async, [p, timeout] {
        try {
          return p->check(timeout);
        } catch (const std::exception& e) {
          ProbeResult r;
          r.message = e.what();
          return r;
        }
      });
    }
    std::map<std::string, ProbeResult> results;
    for (auto& [name, f] : futures) results[name] = f.get();
    auto t = now();

    bool any_primary = false, primary_ok = true, any_standby = false, standby_ok = true;
    std::vector<std::string> failing;
    for (const auto& pair : g.cfg.pairs) {
      if (auto it = results.find(pair.primary); it != results.end()) {
        any_primary = true;
        if (!it->second.ok) {
          primary_ok = false;
          if (std::find(failing.begin(), failing.end(), pair.primary) == failing.end()) {
            failing.push_back(pair.primary);
          }
        }
      }
      if (auto it = results.find(pair.standby); it != results.end()) {
        any_standby = true;
        standby_ok = standby_ok && it->second.ok;
      }
    }
    // Holistic: a failing primary counts as down only when every mirror reading from it is
    // broken too (a cluster without mirrors has nothing to contradict the probe).
    bool mirror_broken = false;
    for (const auto& name : failing) {
      bool all_broken = true;
      for (const auto& m : g.forward) {
        if (m.source == name && !broken(stats(m.name))) all_broken = false;
      }
      mirror_broken = mirror_broken || all_broken;
    }
    std::optional<Duration> lag;
    for (const auto& m : g.forward) {
      auto st = stats(m.name);
      if (st && st->lag_seconds >= 0) {
        auto d = Duration(static_cast<std::int64_t>(st->lag_seconds * 1000));
        lag = lag ? std::max(*lag, d) : d;
      }
    }

    std::lock_guard lock(g.mu);
    for (auto& [name, h] : g.health) {
      auto it = results.find(name);
      h.has_probe = g.probes.count(name) && g.probes[name] != nullptr;
      if (it == results.end()) continue;
      if (h.probed && h.up != it->second.ok) {
        spdlog::log(it->second.ok ? spdlog::level::info : spdlog::level::warn,
                    "group={} cluster={} is {}{}{}", g.cfg.name, name,
                    it->second.ok ? "up" : "down", it->second.message.empty() ? "" : ": ",
                    it->second.message);
      }
      h.probed = true;
      h.up = it->second.ok;
      h.latency_ms = it->second.latency_ms;
      h.message = it->second.message;
      h.at = t.wall;
      ++h.probes;
      if (!it->second.ok) ++h.failures;
    }
    g.failing_primaries = failing;
    if (any_primary) {
      if (!primary_ok && !g.first_failure) g.first_failure = t.wall;
      if (primary_ok) g.first_failure.reset();
      apply_locked(g, Event::probe(t, Side::primary, primary_ok, mirror_broken, lag));
    }
    if (any_standby) apply_locked(g, Event::probe(t, Side::standby, standby_ok));
    apply_locked(g, Event::tick(t));
  }

  // ---- the group's thread

  void execute(Group& g, const Action& a, std::stop_token st) {
    switch (a.type) {
      case ActionType::run_step: {
        if (a.retry) {
          spdlog::info("group={} step {} again", g.cfg.name, failover::to_string(a.step));
          if (!pause(g, st, retry_interval(g))) return;
        }
        auto began = clock.steady();
        spdlog::info("group={} step {} ...", g.cfg.name, failover::to_string(a.step));
        std::optional<StepResult> r;
        try {
          r = run_step(g, a.step, st);
        } catch (const std::exception& e) {
          r = StepResult{false, false, e.what(), {}};
        }
        if (!r) return;  // stopped: the persisted step resumes at the next start
        auto took = duration_cast<milliseconds>(clock.steady() - began);
        auto t = now();
        if (r->ok) {
          spdlog::info("group={} step {} done in {} ms", g.cfg.name, failover::to_string(a.step),
                       took.count());
          apply(g, Event::done(t, a.step, took, r->detail));
        } else {
          spdlog::error("group={} step {} failed after {} ms{}: {}", g.cfg.name,
                        failover::to_string(a.step), took.count(),
                        r->abort ? " (switch aborted)" : " (will retry)", r->error);
          apply(g, Event::failed(t, a.step, r->abort, r->error, took, r->detail));
        }
        return;
      }
      case ActionType::query_witnesses: query_witnesses(g); return;
      case ActionType::resume_forward: resume_forward(g); return;
      case ActionType::start_reverse:
        start_reverse(g, a.detail.value("report_unreplicated", false));
        return;
      case ActionType::persist:
      case ActionType::log_event:
        return;  // done inline by apply()
    }
  }

  void loop(Group& g, std::stop_token st) {
    auto next_probe = clock.steady();
    while (!st.stop_requested()) {
      std::optional<Action> action;
      {
        std::unique_lock lock(g.mu);
        if (g.pending.empty()) {
          auto wait = std::max(Duration(0), duration_cast<milliseconds>(next_probe - clock.steady()));
          g.cv.wait_for(lock, st, wait, [&] { return !g.pending.empty(); });
          if (st.stop_requested()) break;
        }
        if (!g.pending.empty()) {
          action = g.pending.front();
          g.pending.pop_front();
          g.executing = true;
        }
      }
      if (action) {
        execute(g, *action, st);
        std::lock_guard lock(g.mu);
        g.executing = false;
        continue;
      }
      if (clock.steady() >= next_probe) {
        // Rounds start every `interval` (not `interval` after a slow round ended): a dead
        // cluster's probe takes up to `timeout`, which must not stretch the detection.
        auto round_start = clock.steady();
        try {
          probe_round(g);
        } catch (const std::exception& e) {
          spdlog::error("group={} probe round failed: {}", g.cfg.name, e.what());
        }
        next_probe = round_start + g.cfg.health.interval;
      }
    }
  }

  // ---- status

  nlohmann::json group_status(const Group& g) const {
    std::lock_guard lock(g.mu);
    const auto& d = g.machine.data();
    nlohmann::json clusters = nlohmann::json::array();
    for (const auto& [name, h] : g.health) {
      nlohmann::json c = {{"name", name}, {"role", h.role}};
      if (h.probed) {
        c["up"] = h.up;
        c["latency_ms"] = h.latency_ms;
        c["checked_at"] = failover::format_time(h.at);
      } else {
        c["up"] = nullptr;
      }
      if (!h.message.empty()) c["message"] = h.message;
      if (!h.has_probe && !h.probed) c["message"] = "no probe for this cluster kind";
      clusters.push_back(c);
    }
    nlohmann::json j = {{"group", g.cfg.name},
                        {"state", failover::to_string(d.state)},
                        {"epoch", d.epoch},
                        {"active", failover::to_string(d.active)},
                        {"since", failover::format_time(d.since)},
                        {"mode", g.cfg.mode == FailoverMode::automatic ? "automatic" : "manual"},
                        {"reason", d.reason},
                        {"primary_failures", d.primary_failures},
                        {"clock_jumps", d.clock_jumps},
                        {"reverse_replication", d.reverse_running},
                        {"clusters", clusters}};
    if (d.last_lag) j["last_lag_ms"] = d.last_lag->count();
    if (d.state == GroupState::failing_over || d.state == GroupState::failing_back) {
      j["step"] = failover::to_string(g.machine.steps()[d.step_index]);
    }
    if (!g.persist_error.empty()) j["persist_error"] = g.persist_error;
    if (d.current) {
      auto last = failover::to_json(*d.current);
      for (const auto& step : last["steps"]) {
        if (step.value("step", "") == "record") last["summary"] = step["detail"];
      }
      j["last_switch"] = last;
    }
    return j;
  }
};

FailoverController::FailoverController(std::shared_ptr<const Config> config,
                                       const BrokerRegistry& registry, MirrorControl mirrors,
                                       std::filesystem::path state_dir, FailoverOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), registry, std::move(mirrors),
                                   std::move(state_dir), options)) {
  impl_->build(*impl_->config);
}

FailoverController::~FailoverController() { stop(); }

void FailoverController::start() {
  if (impl_->started) return;
  impl_->started = true;
  for (auto& g : impl_->groups) {
    Impl::Group* gp = g.get();
    gp->thread = std::jthread([this, gp](std::stop_token st) { impl_->loop(*gp, st); });
  }
}

void FailoverController::stop() {
  for (auto& g : impl_->groups) {
    if (g->thread.joinable()) g->thread.request_stop();
  }
  for (auto& g : impl_->groups) {
    if (g->thread.joinable()) g->thread.join();
    std::vector<std::future<bool>> background;
    {
      std::lock_guard lock(g->mu);
      background.swap(g->background);
    }
    for (auto& f : background) f.wait();  // bounded by MirrorControl::stop's own timeout
  }
  impl_->started = false;
}

bool FailoverController::should_run(const std::string& mirror_name) const {
  for (const auto& g : impl_->groups) {
    for (const auto& m : g->forward) {
      if (m.name != mirror_name) continue;
      std::lock_guard lock(g->mu);
      const auto& d = g->machine.data();
      const auto& steps = g->machine.steps();
      auto index_of = [&](Step s) {
        return static_cast<std::size_t>(std::find(steps.begin(), steps.end(), s) - steps.begin());
      };
      switch (d.state) {
        case GroupState::replicating:
        case GroupState::suspect:
        case GroupState::blocked:
          return true;
        case GroupState::failing_over:
          return d.step_index < index_of(Step::stop_mirrors);
        case GroupState::failed_over:
          return false;
        case GroupState::failing_back:
          return d.step_index > index_of(Step::resume);
      }
    }
  }
  return true;
}

nlohmann::json FailoverController::status() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& g : impl_->groups) out.push_back(impl_->group_status(*g));
  return out;
}

Decision FailoverController::request_failover(const std::string& group, bool force,
                                              std::string reason) {
  auto* g = impl_->find(group);
  if (!g) return {Decision::Kind::not_found, fmt::format("no failover group '{}'", group)};
  spdlog::info("group={} failover requested (force={}): {}", group, force, reason);
  auto out = impl_->apply(*g, Event::failover(impl_->now(), force, std::move(reason)));
  if (out.decision == failover::DecisionKind::started) return {Decision::Kind::started, out.reason};
  return {Decision::Kind::refused, out.reason};
}

Decision FailoverController::request_failback(const std::string& group, bool force) {
  auto* g = impl_->find(group);
  if (!g) return {Decision::Kind::not_found, fmt::format("no failover group '{}'", group)};
  spdlog::info("group={} failback requested (force={})", group, force);
  auto out = impl_->apply(*g, Event::failback(impl_->now(), force, "operator request"));
  if (out.decision == failover::DecisionKind::started) return {Decision::Kind::started, out.reason};
  return {Decision::Kind::refused, out.reason};
}

FailoverMetrics FailoverController::metrics() const {
  FailoverMetrics m;
  for (auto s : failover::all_states()) m.states.push_back(failover::to_string(s));
  std::map<std::string, FailoverMetrics::Cluster> clusters;
  for (const auto& g : impl_->groups) {
    std::lock_guard lock(g->mu);
    const auto& d = g->machine.data();
    m.groups.push_back({g->cfg.name, failover::to_string(d.state), d.epoch,
                        failover::to_string(d.active), g->failovers, g->failbacks});
    for (const auto& [name, h] : g->health) {
      if (!h.probed) continue;
      auto& c = clusters[name];
      c.cluster = name;
      c.up = h.up;
      c.probe_latency_seconds = h.latency_ms / 1000.0;
      c.probes_total += h.probes;
      c.probe_failures_total += h.failures;
    }
  }
  for (auto& [name, c] : clusters) m.clusters.push_back(c);
  return m;
}

bool FailoverController::wait_for_state(const std::string& group, const std::string& state,
                                        std::chrono::milliseconds timeout) const {
  auto* g = impl_->find(group);
  if (!g) return false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    {
      std::lock_guard lock(g->mu);
      // Settled: the state is reached and nothing is left to execute for it.
      if (failover::to_string(g->machine.data().state) == state && g->pending.empty() &&
          !g->executing) {
        return true;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace mqdr
