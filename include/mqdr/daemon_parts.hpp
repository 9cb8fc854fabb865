#pragma once
// The parts of the daemon, exposed for the failover wiring and for tests: the cluster monitor
// and the Daemon object that owns supervisor, monitor and admin server.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "mqdr/admin.hpp"
#include "mqdr/broker.hpp"
#include "mqdr/supervisor.hpp"

namespace mqdr {

struct ClusterHealth {
  std::string name;
  std::string kind;
  bool known = false;  // false until a probe ran (or no probe exists for the kind)
  bool up = false;
  double latency_ms = 0;
  std::string message;
};

// Probes every cluster of the config at `interval` on a thread of its own, for status and
// mqdr_cluster_up. Thread-safe.
class ClusterMonitor {
 public:
  ClusterMonitor(const BrokerRegistry& registry, Duration interval);
  ~ClusterMonitor();
  void start(ConfigPtr config);  // (re)starts with this config
  void stop();
  std::vector<ClusterHealth> health() const;

 private:
  void loop(std::stop_token stop);
  const BrokerRegistry& registry_;
  Duration interval_;
  mutable std::mutex mu_;
  ConfigPtr config_;
  std::map<std::string, ClusterHealth> health_;
  std::jthread thread_;
};

// Owns the running topology. start()/stop()/reload() are called from the main thread; status()
// and metrics() from admin threads.
class Daemon {
 public:
  Daemon(ConfigPtr config, const BrokerRegistry& registry);
  ~Daemon();

  // Before start(): POST routes of the admin API and extra status/metrics providers
  // (failover, backups).
  void add_post_route(std::string pattern, AdminServer::PostHandler handler);
  void set_extra_status(std::function<nlohmann::json(const std::string& section)> f) {
    extra_status_ = std::move(f);
  }
  void set_extra_metrics(std::function<std::vector<MetricFamily>()> f) {
    extra_metrics_ = std::move(f);
  }

  void start();  // throws when the admin server cannot bind
  void stop();
  bool reload(ConfigPtr next);

  void start_mirror(const MirrorConfig& mirror);
  bool stop_mirror(const std::string& name);

  nlohmann::json status() const;
  std::vector<MetricFamily> metrics() const;
  const Supervisor& supervisor() const { return supervisor_; }
  ConfigPtr config() const { return config_; }
  int admin_port() const { return admin_ ? admin_->port() : 0; }

 private:
  WorkerFactory mirror_factory(const MirrorConfig& mirror, const WorkerStatsPtr& stats);

  ConfigPtr config_;
  const BrokerRegistry& registry_;
  Supervisor supervisor_;
  ClusterMonitor monitor_;
  std::unique_ptr<AdminServer> admin_;
  std::vector<std::pair<std::string, AdminServer::PostHandler>> post_routes_;
  std::function<nlohmann::json(const std::string&)> extra_status_;
  std::function<std::vector<MetricFamily>()> extra_metrics_;
  mutable std::mutex mu_;
  std::map<std::string, WorkerStatsPtr> mirror_stats_;
  std::atomic<bool> ready_{false};
  bool stopped_ = false;
};

}  // namespace mqdr
