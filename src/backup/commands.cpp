// `mqdr backup -c FILE --plan NAME [--full]`, `mqdr restore -c FILE --from DIR --to CLUSTER
// [--rename OLD=NEW]...` and the function behind `mqdr verify --backup DIR`.
// Exit codes as SPEC.md: 0 ok, 1 runtime failure, 2 usage or configuration, 3 a difference.
#include <pthread.h>
#include <signal.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <optional>
#include <stop_token>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backup/kinds.hpp"
#include "backup/manifest.hpp"
#include "backup/progress.hpp"
#include "mqdr/backup.hpp"
#include "mqdr/cli.hpp"
#include "mqdr/config_loader.hpp"

namespace mqdr::backup {

namespace fs = std::filesystem;

std::unique_ptr<BackupReader> make_reader(const BackupPlanConfig& plan, const ClusterConfig& cluster) {
  switch (cluster.kind) {
    case ClusterKind::kafka: return make_kafka_reader(plan, cluster);
    case ClusterKind::nats: return make_nats_reader(plan, cluster);
    case ClusterKind::rabbitmq: return make_rabbitmq_reader(plan, cluster);
  }
  throw std::runtime_error("unknown cluster kind");
}

std::unique_ptr<RestoreTarget> make_target(const ClusterConfig& cluster) {
  switch (cluster.kind) {
    case ClusterKind::kafka: return make_kafka_target(cluster);
    case ClusterKind::nats: return make_nats_target(cluster);
    case ClusterKind::rabbitmq: return make_rabbitmq_target(cluster);
  }
  throw std::runtime_error("unknown cluster kind");
}

namespace {

// SIGINT/SIGTERM request a stop (the run then cleans up and exits 1) instead of killing the
// process halfway through a file.
class SignalStop {
 public:
  SignalStop() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
    thread_ = std::thread([this, set] {
      int sig = 0;
      sigwait(&set, &sig);
      source_.request_stop();
    });
  }
  ~SignalStop() {
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  std::stop_token token() const { return source_.get_token(); }

 private:
  std::stop_source source_;
  sigset_t old_{};
  std::thread thread_;
};

std::string mb(std::uint64_t bytes) { return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6); }

int run_backup(const std::string& file, const std::string& plan_name, bool full) {
  auto config = cli::load_config_or_report(file);
  if (!config) return cli::kUsageError;
  const BackupPlanConfig* plan = config->plan(plan_name);
  if (plan == nullptr) {
    std::cerr << fmt::format("{}: no backup plan named '{}'\n", file, plan_name);
    return cli::kUsageError;
  }
  const ClusterConfig* cluster = config->cluster(plan->cluster);
  Progress progress;
  SignalStop signals;
  try {
    auto reader = make_reader(*plan, *cluster);
    ProgressBar bar(fmt::format("backup {}", plan->name), progress);
    const BackupResult r = take_backup(*plan, *cluster, full, *reader, &progress, signals.token());
    bar.stop();
    std::cout << fmt::format("backup {}: {} ({} records, {} raw, {} on disk) in {:.1f} s: {}\n",
                             plan->name, r.name, r.records, mb(r.raw_bytes), mb(r.bytes), r.seconds,
                             r.dir.string());
    return cli::kOk;
  } catch (const std::exception& e) {
    std::cerr << fmt::format("mqdr backup: plan {}: {}\n", plan->name, e.what());
    return cli::kRuntimeError;
  }
}

int run_restore(const std::string& file, const std::string& from, const std::string& to,
                const std::vector<std::string>& rename_args, const std::string& checkpoint_arg) {
  auto config = cli::load_config_or_report(file);
  if (!config) return cli::kUsageError;
  const ClusterConfig* cluster = config->cluster(to);
  if (cluster == nullptr) {
    std::cerr << fmt::format("{}: no cluster named '{}'\n", file, to);
    return cli::kUsageError;
  }
  Renames renames;
  for (const auto& r : rename_args) {
    const auto eq = r.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == r.size()) {
      std::cerr << fmt::format("mqdr restore: --rename '{}': expected OLD=NEW\n", r);
      return cli::kUsageError;
    }
    renames[r.substr(0, eq)] = r.substr(eq + 1);
  }
  fs::path dir = from;
  if (dir.filename().empty()) dir = dir.parent_path();
  Manifest m;
  try {
    m = read_manifest(dir);
  } catch (const std::exception& e) {
    std::cerr << fmt::format("mqdr restore: {}\n", e.what());
    return cli::kRuntimeError;
  }
  if (m.kind != to_string(cluster->kind)) {
    std::cerr << fmt::format("mqdr restore: {} is a {} backup; cluster {} is {}\n", dir.string(), m.kind,
                             to, to_string(cluster->kind));
    return cli::kUsageError;
  }
  for (const auto& [from_name, to_name] : renames) {
    const bool item = m.item(from_name) != nullptr;
    const bool named = m.topology.dump().find(nlohmann::json(from_name).dump()) != std::string::npos;
    if (!item && !named) {
      std::cerr << fmt::format("mqdr restore: warning: --rename {}={}: the backup has no item named '{}'\n",
                               from_name, to_name, from_name);
    }
  }
  RestoreOptions opt;
  opt.backup_dir = dir;
  opt.renames = renames;
  opt.checkpoint = !checkpoint_arg.empty()
                       ? fs::path(checkpoint_arg)
                       : config->daemon.state_dir / "restores" /
                             fmt::format("{}-{}-to-{}.json", m.plan, m.name, to);
  Progress progress;
  SignalStop signals;
  try {
    auto target = make_target(*cluster);
    ProgressBar bar(fmt::format("restore {} -> {}", m.name, to), progress);
    const RestoreResult r = restore(opt, *target, &progress, signals.token());
    bar.stop();
    std::cout << fmt::format("restore {} -> {}: {} records written, {} already there, {} backups "
                             "({}) in {:.1f} s\n",
                             m.name, to, r.records, r.skipped, r.chain.size(),
                             fmt::join(r.chain, ", "), r.seconds);
    return cli::kOk;
  } catch (const std::exception& e) {
    std::cerr << fmt::format("mqdr restore: {} -> {}: {}\n", dir.string(), to, e.what());
    return cli::kRuntimeError;
  }
}

}  // namespace

int verify_command(const std::string& dir) {
  Progress progress;
  try {
    ProgressBar bar(fmt::format("verify {}", dir), progress);
    const VerifyReport r = verify_backup(dir, &progress);
    bar.stop();
    if (!r.ok) {
      std::cout << "CORRUPT: " << r.problem << "\n";
      return cli::kDifference;
    }
    std::cout << fmt::format("backup {}: ok ({} backups in the chain, {} segments, {} records)\n", dir,
                             r.backups, r.segments, r.records);
    return cli::kOk;
  } catch (const std::exception& e) {
    std::cerr << fmt::format("mqdr verify --backup {}: {}\n", dir, e.what());
    return cli::kRuntimeError;
  }
}

void register_commands() {
  cli::add_command([](CLI::App& app, const BrokerRegistry&) -> std::function<int()> {
    struct Args {
      std::string config, plan;
      bool full = false;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("backup", "Take one backup of a plan now (incremental unless --full)");
    cmd->add_option("-c,--config", a->config, "Config file")->required();
    cmd->add_option("--plan", a->plan, "Backup plan (backups[].name)")->required();
    cmd->add_flag("--full", a->full, "Take a full backup even when an incremental could continue");
    return [a] { return run_backup(a->config, a->plan, a->full); };
  });
  cli::add_command([](CLI::App& app, const BrokerRegistry&) -> std::function<int()> {
    struct Args {
      std::string config, from, to, checkpoint;
      std::vector<std::string> renames;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand(
        "restore", "Replay a backup and the chain it continues into a cluster of the same kind");
    cmd->add_option("-c,--config", a->config, "Config file")->required();
    cmd->add_option("--from", a->from, "Backup directory (DIR/PLAN/NAME)")->required();
    cmd->add_option("--to", a->to, "Target cluster (clusters.NAME)")->required();
    cmd->add_option("--rename", a->renames, "OLD=NEW: restore item OLD as NEW (repeatable)");
    cmd->add_option("--checkpoint", a->checkpoint,
                    "File remembering an interrupted restore (default: daemon.state_dir/restores/...)");
    return [a] { return run_restore(a->config, a->from, a->to, a->renames, a->checkpoint); };
  });
}

}  // namespace mqdr::backup
