// The failover controller inside the daemon (DaemonExtension): owns the FailoverController,
// starts and stops reverse mirrors through the Daemon, serves POST /v1/failover|failback/{group},
// the status section `failover` and the mqdr_failover_* metrics. A reload rebuilds the
// controller from the new config; the persisted group states carry over.
#include "mqdr/failover_extension.hpp"

#include <mutex>
#include <shared_mutex>

#include <spdlog/spdlog.h>

#include "mqdr/failover.hpp"
#include "mqdr/failover_admin.hpp"

namespace mqdr {

namespace {

class FailoverExtension final : public DaemonExtension {
 public:
  FailoverExtension(Daemon& daemon, ConfigPtr config) : daemon_(daemon) { build(std::move(config)); }
  ~FailoverExtension() override { stop(); }

  std::vector<std::pair<std::string, AdminServer::PostHandler>> post_routes() override {
    return {{R"(/v1/failover/([^/]+))", route(&failover_post_handler)},
            {R"(/v1/failback/([^/]+))", route(&failback_post_handler)}};
  }

  bool should_run(const std::string& mirror) const override {
    std::shared_lock lock(mu_);
    return !controller_ || controller_->should_run(mirror);
  }

  void start() override {
    std::shared_lock lock(mu_);
    if (controller_) controller_->start();
  }

  void stop() override {
    std::shared_lock lock(mu_);
    if (controller_) controller_->stop();
  }

  void reload(ConfigPtr next) override {
    std::unique_lock lock(mu_);
    if (controller_) {
      controller_->stop();
      controller_.reset();  // releases the state directory's lock before the new one takes it
    }
    lock.unlock();
    build(std::move(next));
    start();
  }

  void add_status(nlohmann::json& status) const override {
    std::shared_lock lock(mu_);
    if (controller_) status["failover"] = controller_->status();
  }

  std::vector<MetricFamily> metrics() const override {
    std::shared_lock lock(mu_);
    if (!controller_) return {};
    return failover_metric_families(controller_->metrics());
  }

 private:
  using HandlerMaker = AdminServer::PostHandler (*)(FailoverController&);

  // The controller may be rebuilt by a reload: the route looks it up on every request.
  AdminServer::PostHandler route(HandlerMaker make) {
    return [this, make](const std::vector<std::string>& captures,
                        const std::map<std::string, std::string>& query,
                        const nlohmann::json& body) {
      std::shared_lock lock(mu_);
      const std::string group = captures.empty() ? "" : captures[0];
      if (!controller_) {
        return to_http({Decision::Kind::not_found, "the config has no failover groups"}, group);
      }
      return make(*controller_)(captures, query, body);
    };
  }

  void build(ConfigPtr config) {
    if (config->failover.empty()) return;
    MirrorControl control;
    control.start = [this](const MirrorConfig& m) { daemon_.start_mirror(m); };
    control.stop = [this](const std::string& name) { return daemon_.stop_mirror(name); };
    control.stats = [this](const std::string& name) { return daemon_.mirror_stats(name); };
    auto controller = std::make_unique<FailoverController>(config, daemon_.registry(),
                                                           std::move(control),
                                                           config->daemon.state_dir);
    std::unique_lock lock(mu_);
    controller_ = std::move(controller);
  }

  Daemon& daemon_;
  mutable std::shared_mutex mu_;
  std::unique_ptr<FailoverController> controller_;
};

}  // namespace

std::unique_ptr<DaemonExtension> make_failover_extension(Daemon& daemon, ConfigPtr config) {
  return std::make_unique<FailoverExtension>(daemon, std::move(config));
}

}  // namespace mqdr
