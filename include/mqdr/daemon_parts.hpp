#pragma once
// The parts of the daemon, exposed for the failover wiring and for tests: the cluster monitor
// and the Daemon object that owns supervisor, monitor and admin server.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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

class Daemon;

// A feature that runs inside the daemon beside the mirror workers (the failover controller, the
// backup scheduler). The Daemon owns its extensions and calls them from its main thread, except
// add_status() and metrics(), which admin threads call at any time.
class DaemonExtension {
 public:
  virtual ~DaemonExtension() = default;
  // Admin POST routes (regex pattern, handler), asked once before the admin server starts. The
  // handlers must stay valid across reload().
  virtual std::vector<std::pair<std::string, AdminServer::PostHandler>> post_routes() { return {}; }
  // False for a configured mirror the daemon must not start now (e.g. the forward mirror of a
  // failed-over group).
  virtual bool should_run(const std::string& /*mirror*/) const { return true; }
  // After the admin server and the configured mirrors started.
  virtual void start() {}
  // Before the mirrors stop.
  virtual void stop() {}
  // SIGHUP with a valid new config: called after removed mirrors stopped and before changed ones
  // start (so should_run() already answers for the new config).
  virtual void reload(ConfigPtr /*next*/) {}
  // Adds its sections to /v1/status (e.g. "failover", "backups").
  virtual void add_status(nlohmann::json& /*status*/) const {}
  virtual std::vector<MetricFamily> metrics() const { return {}; }
};

// Makes a feature's extension for a daemon about to start; nullptr when the config does not use
// the feature. May throw std::runtime_error (the daemon then refuses to start, exit 1).
using ExtensionFactory = std::function<std::unique_ptr<DaemonExtension>(Daemon&, ConfigPtr)>;
// Registered once by the binary's wiring (src/cli/wiring.cpp); run_daemon() uses every one.
void add_daemon_extension(ExtensionFactory factory);
const std::vector<ExtensionFactory>& daemon_extensions();

// Owns the running topology. start()/stop()/reload() are called from the main thread; status()
// and metrics() from admin threads.
class Daemon {
 public:
  Daemon(ConfigPtr config, const BrokerRegistry& registry);
  ~Daemon();

  // Before start().
  void add_extension(std::unique_ptr<DaemonExtension> extension);

  void start();  // throws when the admin server cannot bind
  void stop();
  bool reload(ConfigPtr next);

  // Starts (or replaces) the worker of a mirror; the mirror config may be one that is not in the
  // config file (the failover controller's reverse mirrors).
  void start_mirror(const MirrorConfig& mirror);
  // Stops a worker, draining it within shutdown_timeout; false when it did not stop in time or
  // was not running.
  bool stop_mirror(const std::string& name);
  // The live figures of a running worker.
  std::optional<StatsSnapshot> mirror_stats(const std::string& name) const;

  nlohmann::json status() const;
  std::vector<MetricFamily> metrics() const;
  const Supervisor& supervisor() const { return supervisor_; }
  ConfigPtr config() const;
  const BrokerRegistry& registry() const { return registry_; }
  int admin_port() const { return admin_ ? admin_->port() : 0; }

 private:
  WorkerFactory mirror_factory(const MirrorConfig& mirror, const WorkerStatsPtr& stats);
  bool should_run(const std::string& mirror) const;

  ConfigPtr config_;
  const BrokerRegistry& registry_;
  Supervisor supervisor_;
  ClusterMonitor monitor_;
  std::unique_ptr<AdminServer> admin_;
  std::vector<std::unique_ptr<DaemonExtension>> extensions_;
  mutable std::mutex mu_;
  std::map<std::string, WorkerStatsPtr> mirror_stats_;
  std::atomic<bool> ready_{false};
  bool stopped_ = false;
};

}  // namespace mqdr
