// `mqdr failover`, `mqdr failback` and `mqdr drill` (SPEC.md "Command line"): clients of the
// running daemon's admin API. The daemon's failover controller does the work; these commands ask
// for it, follow the group's state in /v1/status and report.
#include "mqdr/failover_commands.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <algorithm>
#include <ctime>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "failover/drill_markers.hpp"
#include "mqdr/admin_client.hpp"
#include "mqdr/cli.hpp"
#include "mqdr/config_loader.hpp"

namespace mqdr::failover {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Progress lines go to a terminal only (SPEC: long work stays quiet otherwise).
struct Progress {
  bool on = ::isatty(STDERR_FILENO) != 0;
  Clock::time_point start = Clock::now();
  void say(const std::string& text) const {
    if (!on) return;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    std::cerr << fmt::format("[{:7.1f}s] {}\n", static_cast<double>(ms.count()) / 1000.0, text);
  }
};

// The group's object from /v1/status; nullopt (with `error` set) when the daemon cannot be asked
// or does not know the group.
std::optional<nlohmann::json> group_status(const Config& config, const std::string& group,
                                           std::string& error) {
  auto reply = admin_request(config, "GET", "/v1/status");
  if (!reply.reached) {
    error = reply.error;
    return std::nullopt;
  }
  if (reply.status != 200 || !reply.body.is_object()) {
    error = fmt::format("the daemon answered /v1/status with HTTP {}", reply.status);
    return std::nullopt;
  }
  for (const auto& g : reply.body.value("failover", nlohmann::json::array())) {
    if (g.value("group", "") == group) return g;
  }
  error = fmt::format("the running daemon has no failover group '{}' (was it reloaded with this "
                      "config?)",
                      group);
  return std::nullopt;
}

std::optional<nlohmann::json> full_status(const Config& config, std::string& error) {
  auto reply = admin_request(config, "GET", "/v1/status");
  if (!reply.reached) {
    error = reply.error;
    return std::nullopt;
  }
  if (reply.status != 200 || !reply.body.is_object()) {
    error = fmt::format("the daemon answered /v1/status with HTTP {}", reply.status);
    return std::nullopt;
  }
  return reply.body;
}

// POST /v1/{failover,failback}/{group}. Returns the CLI exit code when the request did not start
// a switch (and prints why), nullopt when it started.
std::optional<int> request_switch(const Config& config, const std::string& what,
                                  const std::string& group, bool force, const std::string& reason) {
  nlohmann::json body = {{"force", force}};
  if (!reason.empty()) body["reason"] = reason;
  auto reply = admin_request(config, "POST", fmt::format("/v1/{}/{}", what, group), body);
  if (!reply.reached) {
    std::cerr << "mqdr " << what << ": " << reply.error << "\n";
    return cli::kRuntimeError;
  }
  const std::string why =
      reply.body.is_object() ? reply.body.value("error", reply.body.dump()) : reply.body.dump();
  switch (reply.status) {
    case 202: return std::nullopt;
    case 401:
      std::cerr << "mqdr " << what << ": the daemon refused the token (HTTP 401); check "
                << "daemon.admin.token_file\n";
      return cli::kRuntimeError;
    case 403:
      std::cerr << "mqdr " << what << ": the daemon accepts no POSTs (HTTP 403): configure "
                << "daemon.admin.token_file\n";
      return cli::kRuntimeError;
    case 404:
      std::cerr << "mqdr " << what << ": " << why << "\n";
      return cli::kUsageError;
    case 409:
      std::cerr << "mqdr " << what << " refused for group " << group << ": " << why << "\n";
      return cli::kRuntimeError;
    default:
      std::cerr << "mqdr " << what << ": the daemon answered HTTP " << reply.status << ": " << why
                << "\n";
      return cli::kRuntimeError;
  }
}

struct SwitchOutcome {
  bool completed = false;
  std::string error;      // why it did not complete
  nlohmann::json group;   // the group's status at the end
  std::chrono::milliseconds observed{0};  // request to completion as seen by this command
};

// Follows the group until the switch of `kind` ("failover" | "failback") with an epoch above
// `epoch_before` finished, printing each step as it completes.
SwitchOutcome follow_switch(const Config& config, const std::string& group,
                            const std::string& kind, std::uint64_t epoch_before,
                            std::chrono::milliseconds timeout, const Progress& progress,
                            Clock::time_point requested) {
  SwitchOutcome out;
  std::size_t steps_seen = 0;
  const auto deadline = Clock::now() + timeout;
  std::string last_error;
  while (Clock::now() < deadline) {
    std::string error;
    auto g = group_status(config, group, error);
    if (!g) {
      // The daemon may be restarting (a crash during the switch resumes it): keep asking.
      if (error != last_error) progress.say("waiting for the daemon: " + error);
      last_error = error;
      std::this_thread::sleep_for(200ms);
      continue;
    }
    last_error.clear();
    out.group = *g;
    const auto& last = (*g).value("last_switch", nlohmann::json::object());
    const bool ours = last.value("kind", "") == kind && last.value("epoch", 0ULL) > epoch_before;
    if (ours) {
      const auto& steps = last.value("steps", nlohmann::json::array());
      for (; steps_seen < steps.size(); ++steps_seen) {
        const auto& s = steps[steps_seen];
        progress.say(fmt::format("{} {} {} ({} ms)", kind, s.value("step", "?"),
                                 s.value("ok", false) ? "done" : "FAILED",
                                 s.value("duration_ms", 0LL)));
      }
      const std::string outcome = last.value("outcome", "");
      if (outcome == "completed") {
        out.completed = true;
        out.observed =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - requested);
        return out;
      }
      if (!outcome.empty()) {
        out.error = fmt::format("the {} ended: {}", kind, outcome);
        return out;
      }
    }
    const std::string state = (*g).value("state", "");
    if (state == "blocked") {
      out.error = fmt::format("the group went blocked: {}", (*g).value("reason", ""));
      return out;
    }
    std::this_thread::sleep_for(100ms);
  }
  out.error = fmt::format("the {} did not finish within {} s (it goes on in the daemon; watch "
                          "`mqdr status`)",
                          kind, timeout.count() / 1000);
  return out;
}

void print_summary(const std::string& kind, const SwitchOutcome& o) {
  const auto& last = o.group.value("last_switch", nlohmann::json::object());
  std::cout << fmt::format("{} of group {} completed: epoch {}, active {}, {} ms in the daemon\n",
                           kind, o.group.value("group", ""), o.group.value("epoch", 0ULL),
                           o.group.value("active", ""), last.value("duration_ms", 0LL));
  for (const auto& s : last.value("steps", nlohmann::json::array())) {
    std::cout << fmt::format("  {:<15} {:>7} ms  {}\n", s.value("step", ""),
                             s.value("duration_ms", 0LL), s.value("ok", false) ? "ok" : "FAILED");
  }
}

// Did the verify step of a switch find a difference? Returns the first one ("" when none).
std::string verify_difference(const nlohmann::json& last_switch) {
  for (const auto& s : last_switch.value("steps", nlohmann::json::array())) {
    if (s.value("step", "") != "verify") continue;
    const auto& mirrors = s.value("detail", nlohmann::json::object()).value("mirrors", nlohmann::json::object());
    for (const auto& [name, m] : mirrors.items()) {
      if (m.is_object() && m.contains("equal") && !m.value("equal", true)) {
        return fmt::format("{}: {}", name, m.value("first_difference", "contents differ"));
      }
    }
  }
  return "";
}

std::optional<std::uint64_t> current_epoch(const Config& config, const std::string& group,
                                           std::string& error) {
  auto g = group_status(config, group, error);
  if (!g) return std::nullopt;
  return (*g).value("epoch", 0ULL);
}

int run_switch(const std::string& file, const std::string& kind, const std::string& group,
               bool force, const std::string& reason, bool wait, int timeout_s) {
  auto config = cli::load_config_or_report(file);
  if (!config) return cli::kUsageError;
  if (config->group(group) == nullptr) {
    std::cerr << fmt::format("{}: no failover group named '{}'\n", file, group);
    return cli::kUsageError;
  }
  std::string error;
  auto epoch = current_epoch(*config, group, error);
  if (!epoch) {
    std::cerr << "mqdr " << kind << ": " << error << "\n";
    return cli::kRuntimeError;
  }
  Progress progress;
  const auto requested = Clock::now();
  if (auto code = request_switch(*config, kind, group, force, reason)) return *code;
  if (!wait) {
    std::cout << fmt::format("{} of group {} started; follow it with `mqdr status`\n", kind, group);
    return cli::kOk;
  }
  progress.say(fmt::format("{} of group {} started", kind, group));
  auto o = follow_switch(*config, group, kind, *epoch, std::chrono::seconds(timeout_s), progress,
                         requested);
  if (!o.completed) {
    std::cerr << "mqdr " << kind << ": " << o.error << "\n";
    return cli::kRuntimeError;
  }
  print_summary(kind, o);
  return cli::kOk;
}

// ---- drill

struct MirrorLag {
  std::string name;
  nlohmann::json lag_records;
  nlohmann::json lag_seconds;
};

std::vector<MirrorLag> mirror_lags(const nlohmann::json& status) {
  std::vector<MirrorLag> out;
  for (const auto& m : status.value("mirrors", nlohmann::json::array())) {
    out.push_back({m.value("name", ""), m.value("lag_records", nlohmann::json()),
                   m.value("lag_seconds", nlohmann::json())});
  }
  return out;
}

// True once every reverse mirror of the group runs and has caught up (lag 0 records).
bool reverse_caught_up(const nlohmann::json& status, const std::vector<std::string>& reverse) {
  for (const auto& name : reverse) {
    bool found = false;
    for (const auto& m : status.value("mirrors", nlohmann::json::array())) {
      if (m.value("name", "") != name) continue;
      found = true;
      if (m.value("state", "") != "running") return false;
      const auto& lag = m.value("lag_records", nlohmann::json());
      if (!lag.is_number() || lag.get<double>() > 0) return false;
    }
    if (!found) return false;
  }
  return true;
}

std::string now_iso() {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int run_drill(const std::string& file, const std::string& group, const std::string& report_file,
              int timeout_s, const BrokerRegistry& registry) {
  auto config = cli::load_config_or_report(file);
  if (!config) return cli::kUsageError;
  const FailoverGroupConfig* fg = config->group(group);
  if (fg == nullptr) {
    std::cerr << fmt::format("{}: no failover group named '{}'\n", file, group);
    return cli::kUsageError;
  }
  Progress progress;
  const auto timeout = std::chrono::seconds(timeout_s);
  nlohmann::json report = {{"group", group}, {"started_at", now_iso()}};
  auto finish = [&](int code, const std::string& verdict, const std::string& why) {
    report["finished_at"] = now_iso();
    report["verdict"] = verdict;
    if (!why.empty()) report["problem"] = why;
    if (!report_file.empty()) {
      std::ofstream out(report_file, std::ios::trunc);
      out << report.dump(2) << "\n";
      if (!out) {
        std::cerr << "mqdr drill: cannot write the report to " << report_file << "\n";
        if (code == cli::kOk) code = cli::kRuntimeError;
      }
    }
    if (!why.empty()) std::cerr << "mqdr drill: " << why << "\n";
    std::cout << fmt::format("drill of group {}: {}\n", group, verdict);
    if (report.contains("rto_ms")) {
      std::cout << fmt::format("  RTO  {} ms (failover requested -> clients switched and recorded)\n",
                               report["rto_ms"].get<long long>());
    }
    if (report.contains("rpo")) {
      const auto& rpo = report["rpo"];
      const auto& lag = rpo.value("lag_at_trigger_ms", nlohmann::json());
      const auto& lost = rpo.value("markers_lost", nlohmann::json());
      std::cout << fmt::format("  RPO  {} (replication lag at the trigger: {})\n",
                               lost.is_number() ? fmt::format("{} markers lost", lost.get<int>())
                                                : std::string("markers not counted"),
                               lag.is_number() ? fmt::format("{} ms", lag.get<double>()) : "unknown");
    }
    if (report.contains("markers")) {
      const auto& mk = report["markers"];
      std::cout << fmt::format("  markers  {} written, {} lost at the failover; {} written on the "
                               "standby, {} lost at the failback\n",
                               mk.value("failover_written", 0), mk.value("failover_lost", 0),
                               mk.value("failback_written", 0), mk.value("failback_lost", 0));
      for (const auto& phase : {"failover", "failback"}) {
        const nlohmann::json legs = mk.value(phase, nlohmann::json::object());
        for (const auto& [mirror, leg] : legs.items()) {
          if (leg.contains("unchecked")) {
            std::cout << fmt::format("    {} unchecked: {}\n", mirror, leg["unchecked"].get<std::string>());
            continue;
          }
          const auto& r = leg.value("consumer_resume", nlohmann::json::object());
          if (r.value("checked", false)) {
            std::cout << fmt::format("    {}: consumer resumed on {} with {} of {} unconsumed markers "
                                     "({} missing), {} redelivered\n",
                                     mirror, std::string(phase) == "failover" ? "the standby" : "the primary",
                                     r.value("resumed", 0),
                                     leg.value("written", 0) - leg.value("consumed", 0),
                                     r.value("missing", nlohmann::json::array()).size(),
                                     r.value("redelivered", 0));
          }
        }
      }
    }
    if (report.contains("failback_ms")) {
      std::cout << fmt::format("  failback {} ms\n", report["failback_ms"].get<long long>());
    }
    if (!report_file.empty()) std::cout << "  report: " << report_file << "\n";
    return code;
  };

  std::string error;
  auto status = full_status(*config, error);
  if (!status) return finish(cli::kRuntimeError, "failed", error);
  auto g = group_status(*config, group, error);
  if (!g) return finish(cli::kRuntimeError, "failed", error);
  if ((*g).value("state", "") != "replicating") {
    return finish(cli::kRuntimeError, "not run",
                  fmt::format("a drill starts from 'replicating'; the group is '{}'",
                              (*g).value("state", "")));
  }
  // Every cluster of the group must have answered its probe (a daemon that just started has not
  // probed yet): a drill exercises a healthy group.
  auto all_up = [](const nlohmann::json& group, std::string& down) {
    for (const auto& c : group.value("clusters", nlohmann::json::array())) {
      if (c.value("up", nlohmann::json()) != true) {
        down = c.value("name", "?");
        return false;
      }
    }
    return true;
  };
  std::string down;
  const auto healthy_deadline = Clock::now() + std::min<std::chrono::seconds>(timeout, 60s);
  while (!all_up(*g, down)) {
    if (Clock::now() >= healthy_deadline) {
      return finish(cli::kRuntimeError, "not run",
                    fmt::format("cluster {} of the group does not answer its probe", down));
    }
    std::this_thread::sleep_for(250ms);
    g = group_status(*config, group, error);
    if (!g) return finish(cli::kRuntimeError, "failed", error);
  }
  status = full_status(*config, error);
  if (!status) return finish(cli::kRuntimeError, "failed", error);
  // The forward mirrors of the group, for RPO and the reverse check.
  std::vector<std::string> forward;
  std::vector<const MirrorConfig*> forward_mirrors;
  for (const auto& m : config->mirrors) {
    for (const auto& p : fg->pairs) {
      if (m.source == p.primary && m.target == p.standby) {
        forward.push_back(m.name);
        forward_mirrors.push_back(&m);
      }
    }
  }
  nlohmann::json before = nlohmann::json::object();
  double records_behind = 0;
  bool records_known = true;
  for (const auto& l : mirror_lags(*status)) {
    if (std::find(forward.begin(), forward.end(), l.name) == forward.end()) continue;
    before[l.name] = {{"lag_records", l.lag_records}, {"lag_seconds", l.lag_seconds}};
    if (l.lag_records.is_number()) {
      records_behind += l.lag_records.get<double>();
    } else {
      records_known = false;
    }
  }
  report["mirrors_before"] = before;
  const std::uint64_t epoch = (*g).value("epoch", 0ULL);

  // 0. Markers on every primary, half of them consumed there.
  auto say = [&](const std::string& text) { progress.say(text); };
  const Duration marker_deadline = std::chrono::duration_cast<Duration>(std::min<std::chrono::seconds>(timeout, 120s));
  nlohmann::json& markers = report["markers"];
  markers = nlohmann::json::object();
  MarkerRun forward_markers(*config, registry, forward_mirrors, false, group, say);
  if (auto problem = forward_markers.write(marker_deadline); !problem.empty()) {
    markers["failover"] = forward_markers.report();
    return finish(cli::kRuntimeError, "not run", "drill markers: " + problem);
  }
  auto count_written = [](const nlohmann::json& legs) {
    int n = 0;
    for (const auto& [_, leg] : legs.items()) n += leg.value("written", 0);
    return n;
  };

  // 1. Failover.
  progress.say("drill: failover of group " + group);
  const auto t_failover = Clock::now();
  if (auto code = request_switch(*config, "failover", group, false, "drill")) {
    return finish(*code, "failed", "the failover was not started");
  }
  auto fo = follow_switch(*config, group, "failover", epoch, timeout, progress, t_failover);
  report["failover"] = fo.group.value("last_switch", nlohmann::json::object());
  if (!fo.completed) return finish(cli::kRuntimeError, "failed", fo.error);
  const auto& last = report["failover"];
  report["rto_ms"] = fo.observed.count();
  report["rto_in_daemon_ms"] = last.value("duration_ms", 0LL);
  report["rpo"] = {{"lag_at_trigger_ms", last.value("lag_at_trigger_ms", nlohmann::json())},
                   {"records", records_known ? nlohmann::json(records_behind) : nlohmann::json()},
                   {"note", "the primary stayed up, so the drain step replicated what was "
                            "behind before promotion"}};
  const std::string difference = verify_difference(last);

  // Markers on the standby: lost ones are the drill's RPO; the drill's consumer resumes there.
  std::string marker_error;
  const int lost_forward = forward_markers.check(marker_deadline, marker_error);
  markers["failover"] = forward_markers.report();
  markers["failover_written"] = count_written(markers["failover"]);
  markers["failover_lost"] = lost_forward;
  report["rpo"]["markers_lost"] = lost_forward;
  if (!marker_error.empty()) {
    return finish(cli::kRuntimeError, "failed",
                  marker_error + "; the group stays failed over (run `mqdr failback`)");
  }

  // Markers written on the standby while failed over must reach the primary at the failback.
  MarkerRun back_markers(*config, registry, forward_mirrors, true, group, say);

  // 2. Reverse replication catches up, then failback.
  std::vector<std::string> reverse;
  for (const auto& f : forward) reverse.push_back(opposite_mirror_name(f));
  auto wait_reverse_caught_up = [&] {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto s = full_status(*config, error);
      if (s && reverse_caught_up(*s, reverse)) return true;
      std::this_thread::sleep_for(250ms);
    }
    return false;
  };
  progress.say("drill: waiting for reverse replication to catch up");
  bool caught_up = wait_reverse_caught_up();
  report["reverse_caught_up"] = caught_up;
  if (caught_up) {
    if (auto problem = back_markers.write(marker_deadline); !problem.empty()) {
      markers["failback"] = back_markers.report();
      return finish(cli::kRuntimeError, "failed",
                    "drill markers on the standby: " + problem +
                        "; the group stays failed over (run `mqdr failback`)");
    }
    // They were written after the catch-up: wait for the reverse mirrors again.
    caught_up = wait_reverse_caught_up();
  }
  if (!caught_up) {
    return finish(cli::kRuntimeError, "failed",
                  "reverse replication did not catch up; the group stays failed over (run "
                  "`mqdr failback` when it has)");
  }
  progress.say("drill: failback of group " + group);
  const std::uint64_t epoch_after = fo.group.value("epoch", epoch + 1);
  const auto t_failback = Clock::now();
  if (auto code = request_switch(*config, "failback", group, false, "drill")) {
    return finish(*code, "failed", "the failback was not started; the group stays failed over");
  }
  auto fb = follow_switch(*config, group, "failback", epoch_after, timeout, progress, t_failback);
  report["failback"] = fb.group.value("last_switch", nlohmann::json::object());
  if (!fb.completed) return finish(cli::kRuntimeError, "failed", fb.error);
  report["failback_ms"] = fb.observed.count();
  const std::string back_difference = verify_difference(report["failback"]);
  const int lost_back = back_markers.check(marker_deadline, marker_error);
  markers["failback"] = back_markers.report();
  markers["failback_written"] = count_written(markers["failback"]);
  markers["failback_lost"] = lost_back;
  if (!marker_error.empty()) return finish(cli::kRuntimeError, "failed", marker_error);

  if (lost_forward + lost_back > 0) {
    return finish(cli::kDifference, "markers lost",
                  fmt::format("{} drill marker(s) lost at the failover, {} at the failback (see "
                              "the report's markers section)",
                              lost_forward, lost_back));
  }
  if (!difference.empty() || !back_difference.empty()) {
    return finish(cli::kDifference, "difference found",
                  "verify found a difference: " + (difference.empty() ? back_difference : difference));
  }
  return finish(cli::kOk, "passed", "");
}

// `mqdr failover` and `mqdr failback`: the same options, the same flow (run_switch).
void add_switch_command(const std::string& kind, const std::string& help,
                        const std::string& force_help, bool with_reason) {
  cli::add_command([=](CLI::App& app, const BrokerRegistry&) -> std::function<int()> {
    struct Args {
      std::string config, group, reason;
      bool force = false, no_wait = false;
      int timeout = 300;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand(kind, help);
    cmd->add_option("-c,--config", a->config, "Config file")->required();
    cmd->add_option("--group", a->group, "Failover group")->required();
    cmd->add_flag("--force", a->force, force_help);
    if (with_reason) cmd->add_option("--reason", a->reason, "Why (recorded with the switch)");
    cmd->add_flag("--no-wait", a->no_wait, "Return once the daemon started the " + kind);
    cmd->add_option("--timeout", a->timeout, "Seconds to wait for the " + kind + " to finish")
        ->capture_default_str();
    return [a, kind] {
      return run_switch(a->config, kind, a->group, a->force, a->reason, !a->no_wait, a->timeout);
    };
  });
}

}  // namespace

void register_commands() {
  add_switch_command("failover", "Switch a failover group to its standby clusters",
                     "Fail over even when replication lags more than max_lag", true);
  add_switch_command("failback", "Switch a failed-over group back to its primaries",
                     "Fail back even when reverse replication lags", false);
  cli::add_command([](CLI::App& app, const BrokerRegistry& registry) -> std::function<int()> {
    struct Args {
      std::string config, group, report;
      int timeout = 600;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand(
        "drill", "Fail a group over and back, measured (RTO, RPO) and verified");
    cmd->add_option("-c,--config", a->config, "Config file")->required();
    cmd->add_option("--group", a->group, "Failover group")->required();
    cmd->add_option("--report", a->report, "Write the drill report (JSON) to this file");
    cmd->add_option("--timeout", a->timeout, "Seconds each phase may take")->capture_default_str();
    return [a, &registry] { return run_drill(a->config, a->group, a->report, a->timeout, registry); };
  });
}

}  // namespace mqdr::failover
