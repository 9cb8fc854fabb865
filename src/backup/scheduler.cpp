// The backup scheduler inside the daemon (DaemonExtension): one thread runs each plan when the
// schedule says so (manifest.hpp schedule(): a full backup every full_every, incrementals every
// incremental_every in between), then applies the retention. Plans run one after another; a
// failed run is retried after a minute (or incremental_every when shorter), never in a loop.
// Serves the status section `backups` and the mqdr_backup_* metrics; a reload swaps the plans
// (a run in progress finishes first).
#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "backup/manifest.hpp"
#include "mqdr/backup.hpp"
#include "mqdr/daemon_parts.hpp"

namespace mqdr::backup {

namespace {

using json = nlohmann::json;

std::optional<TimePoint> parse_rfc3339(const std::string& s) {
  std::tm tm{};
  const char* end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return SysClock::from_time_t(::timegm(&tm));
}

double seconds_since_epoch(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

struct PlanState {
  std::string state = "idle";  // idle | running | failed
  std::string last_backup;
  std::optional<TimePoint> last_success;
  double last_duration = 0;
  std::uint64_t last_records = 0, last_bytes = 0;
  std::uint64_t failures = 0, successes = 0, deleted = 0;
  std::string last_error;
  std::optional<TimePoint> next_due, retry_at;
  std::size_t retained = 0;
  std::shared_ptr<Progress> progress;
};

class BackupScheduler final : public DaemonExtension {
 public:
  explicit BackupScheduler(ConfigPtr config) : config_(std::move(config)) { refresh_states(); }
  ~BackupScheduler() override { stop(); }

  void start() override {
    if (thread_.joinable()) return;
    thread_ = std::jthread([this](std::stop_token st) { loop(st); });
  }

  void stop() override {
    if (!thread_.joinable()) return;
    thread_.request_stop();
    cv_.notify_all();
    thread_.join();
  }

  void reload(ConfigPtr next) override {
    {
      std::lock_guard lock(mu_);
      config_ = std::move(next);
      wake_ = true;
    }
    refresh_states();
    cv_.notify_all();
  }

  void add_status(json& status) const override {
    std::lock_guard lock(mu_);
    json arr = json::array();
    for (const auto& plan : config_->backups) {
      auto it = states_.find(plan.name);
      if (it == states_.end()) continue;
      const PlanState& s = it->second;
      json j = {{"plan", plan.name},
                {"cluster", plan.cluster},
                {"kind", to_string(plan.kind)},
                {"dir", (plan.dir / plan.name).string()},
                {"state", s.state},
                {"last_backup", s.last_backup},
                {"last_success", s.last_success ? rfc3339(*s.last_success) : ""},
                {"last_duration_seconds", s.last_duration},
                {"last_records", s.last_records},
                {"last_bytes", s.last_bytes},
                {"retained", s.retained},
                {"failures_total", s.failures},
                {"next_due", s.next_due ? rfc3339(*s.next_due) : ""},
                {"last_error", s.last_error}};
      if (s.progress) {
        j["progress"] = {{"records", s.progress->records.load()}, {"total_records", s.progress->total_records.load()}};
      }
      arr.push_back(std::move(j));
    }
    status["backups"] = std::move(arr);
  }

  std::vector<MetricFamily> metrics() const override {
    std::lock_guard lock(mu_);
    MetricFamily last{"mqdr_backup_last_success_timestamp_seconds",
                      "Unix time when the plan's last backup completed", MetricFamily::Type::gauge, {}};
    MetricFamily dur{"mqdr_backup_last_duration_seconds", "Duration of the plan's last successful backup",
                     MetricFamily::Type::gauge, {}};
    MetricFamily bytes{"mqdr_backup_last_bytes", "Bytes on disk of the plan's last successful backup",
                       MetricFamily::Type::gauge, {}};
    MetricFamily recs{"mqdr_backup_last_records", "Records in the plan's last successful backup",
                      MetricFamily::Type::gauge, {}};
    MetricFamily ok{"mqdr_backup_runs_total", "Successful backups taken by this process",
                    MetricFamily::Type::counter, {}};
    MetricFamily fail{"mqdr_backup_failures_total", "Failed backup runs", MetricFamily::Type::counter, {}};
    MetricFamily kept{"mqdr_backup_retained", "Complete backups of the plan on disk", MetricFamily::Type::gauge, {}};
    for (const auto& plan : config_->backups) {
      auto it = states_.find(plan.name);
      if (it == states_.end()) continue;
      const PlanState& s = it->second;
      const std::map<std::string, std::string> l = {{"plan", plan.name}};
      if (s.last_success) last.samples.push_back({l, seconds_since_epoch(*s.last_success)});
      dur.samples.push_back({l, s.last_duration});
      bytes.samples.push_back({l, static_cast<double>(s.last_bytes)});
      recs.samples.push_back({l, static_cast<double>(s.last_records)});
      ok.samples.push_back({l, static_cast<double>(s.successes)});
      fail.samples.push_back({l, static_cast<double>(s.failures)});
      kept.samples.push_back({l, static_cast<double>(s.retained)});
    }
    return {last, dur, bytes, recs, ok, fail, kept};
  }

 private:
  // What the disk says about each plan (its newest backup), for plans not seen before.
  void refresh_states() {
    ConfigPtr cfg;
    {
      std::lock_guard lock(mu_);
      cfg = config_;
    }
    for (const auto& plan : cfg->backups) {
      {
        std::lock_guard lock(mu_);
        if (states_.count(plan.name) != 0) continue;
      }
      PlanState s;
      const auto list = list_backups(plan.dir / plan.name);
      s.retained = list.size();
      if (!list.empty()) {
        s.last_backup = list.back().name;
        try {
          const Manifest m = read_manifest(plan.dir / plan.name / list.back().name);
          s.last_success = parse_rfc3339(m.completed_at);
          s.last_records = m.records;
          s.last_bytes = m.bytes;
        } catch (const std::exception&) {
        }
      }
      std::lock_guard lock(mu_);
      states_.emplace(plan.name, std::move(s));
    }
  }

  void loop(std::stop_token stop) {
    while (!stop.stop_requested()) {
      ConfigPtr cfg;
      {
        std::lock_guard lock(mu_);
        cfg = config_;
      }
      TimePoint earliest = SysClock::now() + std::chrono::minutes(1);
      for (const auto& plan : cfg->backups) {
        if (stop.stop_requested()) return;
        const TimePoint due = run_if_due(*cfg, plan, stop);
        earliest = std::min(earliest, due);
      }
      const auto wait = std::max<SysClock::duration>(earliest - SysClock::now(), std::chrono::milliseconds(200));
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, stop, wait, [this] { return wake_; });
      wake_ = false;
    }
  }

  // Runs the plan when due; returns when it wants to be looked at again.
  TimePoint run_if_due(const Config& cfg, const BackupPlanConfig& plan, std::stop_token stop) {
    const auto now = SysClock::now();
    {
      std::lock_guard lock(mu_);
      PlanState& s = states_[plan.name];
      if (s.retry_at && now < *s.retry_at) return *s.retry_at;
    }
    std::vector<BackupEntry> list;
    try {
      list = list_backups(plan.dir / plan.name);
    } catch (const std::exception& e) {
      spdlog::warn("backup plan={}: cannot list {}: {}", plan.name, (plan.dir / plan.name).string(), e.what());
    }
    const ScheduleDecision d = schedule(list, now, plan.full_every, plan.incremental_every);
    if (d.kind == ScheduleDecision::Kind::none) {
      std::lock_guard lock(mu_);
      states_[plan.name].next_due = d.next_due;
      states_[plan.name].retained = list.size();
      return d.next_due;
    }
    const bool full = d.kind == ScheduleDecision::Kind::full;
    auto progress = std::make_shared<Progress>();
    {
      std::lock_guard lock(mu_);
      PlanState& s = states_[plan.name];
      s.state = "running";
      s.progress = progress;
    }
    spdlog::info("backup plan={} cluster={}: taking {} backup", plan.name, plan.cluster,
                 full ? "a full" : "an incremental");
    const auto* cluster = cfg.cluster(plan.cluster);
    try {
      if (cluster == nullptr) throw std::runtime_error("cluster " + plan.cluster + " is not configured");
      auto reader = make_reader(plan, *cluster);
      const BackupResult r = take_backup(plan, *cluster, full, *reader, progress.get(), stop);
      const auto deleted = apply_retention(plan, SysClock::now());
      const auto kept = list_backups(plan.dir / plan.name).size();
      spdlog::info("backup plan={} cluster={}: {} done ({} records, {} bytes on disk, {:.1f} s); {} deleted by retention",
                   plan.name, plan.cluster, r.name, r.records, r.bytes, r.seconds, deleted.size());
      std::lock_guard lock(mu_);
      PlanState& s = states_[plan.name];
      s.state = "idle";
      s.last_backup = r.name;
      s.last_success = SysClock::now();
      s.last_duration = r.seconds;
      s.last_records = r.records;
      s.last_bytes = r.bytes;
      ++s.successes;
      s.deleted += deleted.size();
      s.retained = kept;
      s.last_error.clear();
      s.retry_at.reset();
      s.progress.reset();
      return SysClock::now();
    } catch (const std::exception& e) {
      const auto delay = std::min<std::chrono::milliseconds>(plan.incremental_every, std::chrono::minutes(1));
      if (!stop.stop_requested()) {
        spdlog::error("backup plan={} cluster={}: failed: {} (next attempt in {} s)", plan.name, plan.cluster,
                      e.what(), std::chrono::duration_cast<std::chrono::seconds>(delay).count());
      }
      std::lock_guard lock(mu_);
      PlanState& s = states_[plan.name];
      s.state = "failed";
      ++s.failures;
      s.last_error = e.what();
      s.retry_at = SysClock::now() + delay;
      s.progress.reset();
      return *s.retry_at;
    }
  }

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  ConfigPtr config_;
  std::map<std::string, PlanState> states_;
  bool wake_ = false;  // a reload changed the plans
  std::jthread thread_;
};

}  // namespace

std::unique_ptr<DaemonExtension> make_extension(Daemon&, std::shared_ptr<const Config> config) {
  return std::make_unique<BackupScheduler>(std::move(config));
}

}  // namespace mqdr::backup
