#include "mqdr/daemon.hpp"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "mqdr/admin.hpp"
#include "mqdr/config_loader.hpp"
#include "mqdr/daemon_parts.hpp"
#include "mqdr/supervisor.hpp"

namespace mqdr {

namespace {

using namespace std::chrono_literals;

// A mirror whose broker kind has no mirror worker in this build fails with this, visibly in
// status, instead of being silently ignored.
class UnavailableWorker final : public Worker {
 public:
  explicit UnavailableWorker(std::string why) : why_(std::move(why)) {}
  Status run(std::stop_token) override { return Status::fatal(why_); }

 private:
  std::string why_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// ClusterMonitor

ClusterMonitor::ClusterMonitor(const BrokerRegistry& registry, Duration interval)
    : registry_(registry), interval_(interval) {}

ClusterMonitor::~ClusterMonitor() { stop(); }

void ClusterMonitor::start(ConfigPtr config) {
  stop();
  {
    std::lock_guard lock(mu_);
    config_ = std::move(config);
    health_.clear();
    for (const auto& [name, c] : config_->clusters) {
      ClusterHealth h;
      h.name = name;
      h.kind = to_string(c.kind);
      health_[name] = h;
    }
  }
  thread_ = std::jthread([this](std::stop_token stop) { loop(stop); });
}

void ClusterMonitor::stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

std::vector<ClusterHealth> ClusterMonitor::health() const {
  std::lock_guard lock(mu_);
  std::vector<ClusterHealth> out;
  for (const auto& [_, h] : health_) out.push_back(h);
  return out;
}

void ClusterMonitor::loop(std::stop_token stop) {
  ConfigPtr config;
  {
    std::lock_guard lock(mu_);
    config = config_;
  }
  std::map<std::string, ProbePtr> probes;
  while (!stop.stop_requested()) {
    for (const auto& [name, cluster] : config->clusters) {
      if (stop.stop_requested()) break;
      const BrokerKind* kind = registry_.find(cluster.kind);
      if (kind == nullptr || !kind->make_probe) continue;  // up stays unknown
      ProbeResult r;
      try {
        auto& probe = probes[name];
        if (!probe) probe = kind->make_probe(cluster);
        r = probe->check(std::min<Duration>(interval_, 5s));
      } catch (const std::exception& e) {
        probes.erase(name);
        r.ok = false;
        r.message = e.what();
      }
      std::lock_guard lock(mu_);
      auto& h = health_[name];
      if (h.up != r.ok || (h.known && h.message != r.message)) {
        if (r.ok) {
          spdlog::info("cluster={} up ({:.1f} ms)", name, r.latency_ms);
        } else {
          spdlog::warn("cluster={} down: {}", name, r.message);
        }
      }
      h.known = true;
      h.up = r.ok;
      h.latency_ms = r.latency_ms;
      h.message = r.message;
    }
    system_clock().sleep_for(interval_, stop);
  }
}

// ---------------------------------------------------------------------------------------------
// Daemon

Daemon::Daemon(ConfigPtr config, const BrokerRegistry& registry)
    : config_(std::move(config)), registry_(registry), monitor_(registry, 5s) {}

Daemon::~Daemon() { stop(); }

std::vector<ExtensionFactory>& extension_registry() {
  static std::vector<ExtensionFactory> factories;
  return factories;
}

void add_daemon_extension(ExtensionFactory factory) {
  extension_registry().push_back(std::move(factory));
}

const std::vector<ExtensionFactory>& daemon_extensions() { return extension_registry(); }

ConfigPtr Daemon::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

void Daemon::add_extension(std::unique_ptr<DaemonExtension> extension) {
  if (extension) extensions_.push_back(std::move(extension));
}

bool Daemon::should_run(const std::string& mirror) const {
  for (const auto& e : extensions_) {
    if (!e->should_run(mirror)) return false;
  }
  return true;
}

std::optional<StatsSnapshot> Daemon::mirror_stats(const std::string& name) const {
  if (!supervisor_.has(name)) return std::nullopt;
  auto stats = supervisor_.stats(name);
  if (!stats) return std::nullopt;
  return stats->snapshot();
}

WorkerFactory Daemon::mirror_factory(const MirrorConfig& mirror, const WorkerStatsPtr& stats) {
  const ConfigPtr config = this->config();
  MirrorContext ctx;
  ctx.config = config;
  ctx.mirror = mirror;
  ctx.source = *config->cluster(mirror.source);
  ctx.target = *config->cluster(mirror.target);
  ctx.stats = stats;
  ctx.state_dir = config->daemon.state_dir / "mirrors" / mirror.name;
  const BrokerKind* kind = registry_.find(mirror.kind);
  if (kind == nullptr || !kind->make_mirror) {
    std::string why = std::string("mirroring between ") + to_string(mirror.kind) +
                      " clusters is not available in this build of mqdr";
    return [why] { return std::make_unique<UnavailableWorker>(why); };
  }
  auto make = kind->make_mirror;
  return [make, ctx] {
    std::error_code ec;
    std::filesystem::create_directories(ctx.state_dir, ec);
    return make(ctx);
  };
}

void Daemon::start_mirror(const MirrorConfig& mirror) {
  WorkerStatsPtr stats;
  {
    std::lock_guard lock(mu_);
    auto& s = mirror_stats_[mirror.name];
    if (!s) s = std::make_shared<WorkerStats>(mirror.name, to_string(mirror.kind));
    stats = s;
  }
  spdlog::info("mirror={} starting ({} {} -> {})", mirror.name, to_string(mirror.kind),
               mirror.source, mirror.target);
  supervisor_.add(mirror.name, mirror_factory(mirror, stats), stats);
}

bool Daemon::stop_mirror(const std::string& name) {
  spdlog::info("mirror={} stopping", name);
  if (!supervisor_.has(name)) return false;
  return supervisor_.remove(name, config()->daemon.shutdown_timeout);
}

void Daemon::start() {
  const auto& cfg = *config_;
  admin_ = std::make_unique<AdminServer>(
      cfg.daemon.admin,
      AdminServer::Handlers{[this] { return ready_.load(); }, [this] { return status(); },
                            [this] { return metrics(); }});
  for (auto& e : extensions_) {
    for (auto& [pattern, handler] : e->post_routes()) admin_->add_post(pattern, handler);
  }
  admin_->start();
  spdlog::info("admin API listening on {}", cfg.daemon.admin.listen);
  monitor_.start(config_);
  for (const auto& m : cfg.mirrors) {
    if (should_run(m.name)) {
      start_mirror(m);
    } else {
      spdlog::info("mirror={} not started: its failover group is not on its source side", m.name);
    }
  }
  for (auto& e : extensions_) e->start();
  ready_ = true;
}

void Daemon::stop() {
  if (stopped_) return;
  stopped_ = true;
  ready_ = false;
  for (auto& e : extensions_) e->stop();
  const auto timeout = config_->daemon.shutdown_timeout;
  if (!supervisor_.stop_all(timeout)) {
    spdlog::error("some workers did not stop within {} ms", timeout.count());
  }
  monitor_.stop();
  if (admin_) admin_->stop();
}

bool Daemon::reload(ConfigPtr next) {
  const Config& old = *config_;
  const Config& cfg = *next;
  if (cfg.daemon.admin.listen != old.daemon.admin.listen ||
      cfg.daemon.state_dir != old.daemon.state_dir) {
    spdlog::warn("reload: daemon.admin.listen and daemon.state_dir changes need a restart; "
                 "keeping the running values");
  }
  spdlog::default_logger()->set_level(spdlog::level::from_str(cfg.daemon.log.level));
  std::vector<std::string> removed;
  std::vector<const MirrorConfig*> changed;
  for (const auto& m : old.mirrors) {
    if (cfg.mirror(m.name) == nullptr) removed.push_back(m.name);
  }
  for (const auto& m : cfg.mirrors) {
    const MirrorConfig* before = old.mirror(m.name);
    if (before == nullptr || !same_settings(*before, m, old, cfg)) changed.push_back(&m);
  }
  for (const auto& name : removed) {
    stop_mirror(name);
    std::lock_guard lock(mu_);
    mirror_stats_.erase(name);
  }
  // Keep the new config alive before workers made from it start.
  {
    std::lock_guard lock(mu_);
    config_ = next;
  }
  for (auto& e : extensions_) e->reload(next);
  for (const auto* m : changed) {
    if (should_run(m->name)) {
      start_mirror(*next->mirror(m->name));
    } else if (supervisor_.has(m->name)) {
      stop_mirror(m->name);
    }
  }
  monitor_.start(next);
  spdlog::info("reload: {} mirrors restarted or added, {} removed, {} unchanged", changed.size(),
               removed.size(), config_->mirrors.size() - changed.size());
  return true;
}

nlohmann::json Daemon::status() const {
  nlohmann::json out;
  out["version"] = MQDR_VERSION;
  auto& mirrors = out["mirrors"] = nlohmann::json::array();
  std::map<std::string, WorkerStatsPtr> stats;
  {
    std::lock_guard lock(mu_);
    stats = mirror_stats_;
  }
  for (const auto& [name, s] : stats) {
    const auto snap = s->snapshot();
    nlohmann::json m;
    m["name"] = snap.name;
    m["kind"] = snap.kind;
    m["state"] = snap.state;
    m["records_total"] = snap.records_total;
    m["bytes_total"] = snap.bytes_total;
    m["errors_total"] = snap.errors_total;
    m["restarts"] = snap.restarts;
    m["lag_records"] = snap.lag_records < 0 ? nlohmann::json(nullptr) : nlohmann::json(snap.lag_records);
    m["lag_seconds"] = snap.lag_seconds < 0 ? nlohmann::json(nullptr) : nlohmann::json(snap.lag_seconds);
    m["last_error"] = snap.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(snap.last_error);
    m["detail"] = snap.detail;
    mirrors.push_back(std::move(m));
  }
  auto& clusters = out["clusters"] = nlohmann::json::array();
  for (const auto& h : monitor_.health()) {
    nlohmann::json c;
    c["name"] = h.name;
    c["kind"] = h.kind;
    c["up"] = h.known ? nlohmann::json(h.up) : nlohmann::json(nullptr);
    if (h.known) c["probe_ms"] = h.latency_ms;
    if (!h.message.empty()) c["message"] = h.message;
    clusters.push_back(std::move(c));
  }
  out["failover"] = nlohmann::json::array();
  for (const auto& e : extensions_) e->add_status(out);
  return out;
}

std::vector<MetricFamily> Daemon::metrics() const {
  using T = MetricFamily::Type;
  MetricFamily records{"mqdr_mirror_records_total", "Records confirmed by the target", T::counter, {}};
  MetricFamily bytes{"mqdr_mirror_bytes_total", "Bytes confirmed by the target", T::counter, {}};
  MetricFamily lag_records{"mqdr_mirror_lag_records", "Records not yet mirrored", T::gauge, {}};
  MetricFamily lag_seconds{"mqdr_mirror_lag_seconds", "Age of the oldest unmirrored record", T::gauge, {}};
  MetricFamily errors{"mqdr_mirror_errors_total", "Mirror errors", T::counter, {}};
  MetricFamily restarts{"mqdr_mirror_restarts_total", "Mirror worker restarts", T::counter, {}};
  MetricFamily running{"mqdr_mirror_running", "1 while the mirror worker runs", T::gauge, {}};
  std::map<std::string, WorkerStatsPtr> stats;
  {
    std::lock_guard lock(mu_);
    stats = mirror_stats_;
  }
  for (const auto& [name, s] : stats) {
    const auto snap = s->snapshot();
    std::map<std::string, std::string> l{{"mirror", name}};
    records.samples.push_back({l, static_cast<double>(snap.records_total)});
    bytes.samples.push_back({l, static_cast<double>(snap.bytes_total)});
    errors.samples.push_back({l, static_cast<double>(snap.errors_total)});
    restarts.samples.push_back({l, static_cast<double>(snap.restarts)});
    running.samples.push_back({l, snap.state == "running" ? 1.0 : 0.0});
    if (snap.lag_records >= 0) lag_records.samples.push_back({l, static_cast<double>(snap.lag_records)});
    if (snap.lag_seconds >= 0) lag_seconds.samples.push_back({l, snap.lag_seconds});
  }
  MetricFamily up{"mqdr_cluster_up", "1 when the cluster's probe succeeds", T::gauge, {}};
  MetricFamily probe{"mqdr_cluster_probe_seconds", "Duration of the last probe", T::gauge, {}};
  for (const auto& h : monitor_.health()) {
    if (!h.known) continue;
    up.samples.push_back({{{"cluster", h.name}}, h.up ? 1.0 : 0.0});
    probe.samples.push_back({{{"cluster", h.name}}, h.latency_ms / 1000.0});
  }
  MetricFamily build{"mqdr_build_info", "Build information", T::gauge, {{{{"version", MQDR_VERSION}}, 1}}};
  std::vector<MetricFamily> out{records, bytes, lag_records, lag_seconds, errors, restarts,
                                running, up, probe, build};
  for (const auto& e : extensions_) {
    for (auto& f : e->metrics()) out.push_back(std::move(f));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// run_daemon

namespace {

void print_problems(const config::Error& e) {
  for (const auto& p : e.problems()) std::cerr << p.str() << "\n";
}

}  // namespace

int run_daemon(const std::filesystem::path& config_file, const BrokerRegistry& registry) {
  // Signals are taken synchronously by this thread; block them before any thread starts so
  // every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  ConfigPtr config;
  try {
    std::vector<config::Problem> warnings;
    config = std::make_shared<const Config>(config::load(config_file, {}, &warnings));
    setup_logging(config->daemon.log.level, config->daemon.log.format == LogFormat::json);
    for (const auto& w : warnings) spdlog::warn("{}", w.str());
  } catch (const config::Error& e) {
    print_problems(e);
    return 2;
  }

  std::unique_ptr<StateLock> lock;
  try {
    lock = std::make_unique<StateLock>(config->daemon.state_dir);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }

  Daemon daemon(config, registry);
  try {
    for (const auto& factory : daemon_extensions()) daemon.add_extension(factory(daemon, config));
    daemon.start();
  } catch (const std::exception& e) {
    spdlog::error("start failed: {}", e.what());
    return 1;
  }
  spdlog::info("mqdr {} running: {} mirrors, {} clusters, config {}", MQDR_VERSION,
               config->mirrors.size(), config->clusters.size(), config_file.string());
  notify::ready();

  const auto watchdog = notify::watchdog_interval();
  const auto tick = watchdog.count() > 0 ? std::min<std::chrono::milliseconds>(watchdog, 1s) : 1s;
  while (true) {
    timespec ts{};
    ts.tv_sec = tick.count() / 1000;
    ts.tv_nsec = (tick.count() % 1000) * 1000000L;
    siginfo_t info{};
    const int sig = sigtimedwait(&signals, &info, &ts);
    if (watchdog.count() > 0) notify::watchdog();
    if (sig < 0) continue;  // timeout or EINTR
    if (sig == SIGHUP) {
      notify::reloading();
      spdlog::info("SIGHUP: reloading {}", config_file.string());
      try {
        std::vector<config::Problem> warnings;
        auto next = std::make_shared<const Config>(config::load(config_file, {}, &warnings));
        for (const auto& w : warnings) spdlog::warn("{}", w.str());
        daemon.reload(next);
      } catch (const config::Error& e) {
        spdlog::error("reload refused, the running config stays: {} problem(s)",
                      e.problems().size());
        for (const auto& p : e.problems()) spdlog::error("{}", p.str());
      } catch (const std::exception& e) {
        spdlog::error("reload failed, the running config stays: {}", e.what());
      }
      notify::ready();
      continue;
    }
    spdlog::info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }
  notify::stopping();
  daemon.stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace mqdr
