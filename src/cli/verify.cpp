// `mqdr verify -c FILE --mirror NAME`: compares what can be compared between a mirror's source
// and target (the broker's MirrorOps::verify: counts and digests up to the last synced
// positions) and names the first difference. Exit 0 equal, 3 a difference, 1 when it could not
// be checked, 2 usage. `mqdr verify --backup DIR` is the backup area's (mqdr/backup.hpp).
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <optional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "mqdr/cli.hpp"
#include "mqdr/config_loader.hpp"

namespace mqdr::cli {

namespace {

int verify_mirror(const std::string& file, const std::string& name, int timeout_s, bool json,
                  const BrokerRegistry& registry) {
  auto loaded = load_config_or_report(file);
  if (!loaded) return kUsageError;
  const Config& config = *loaded;
  const MirrorConfig* mirror = config.mirror(name);
  if (mirror == nullptr) {
    std::cerr << fmt::format("{}: no mirror named '{}'\n", file, name);
    return kUsageError;
  }
  const BrokerKind* kind = registry.find(mirror->kind);
  if (kind == nullptr || !kind->make_mirror_ops) {
    std::cerr << fmt::format("mqdr verify: {} mirrors cannot be verified by this build\n",
                             to_string(mirror->kind));
    return kRuntimeError;
  }
  auto shared = std::make_shared<const Config>(config);
  MirrorContext ctx;
  ctx.config = shared;
  ctx.mirror = *mirror;
  ctx.source = *shared->cluster(mirror->source);
  ctx.target = *shared->cluster(mirror->target);
  ctx.stats = std::make_shared<WorkerStats>(mirror->name, to_string(mirror->kind));
  // The daemon's state of this mirror (offset maps, checkpoints), read only.
  ctx.state_dir = shared->daemon.state_dir / "mirrors" / mirror->name;
  if (::isatty(STDERR_FILENO) != 0) {
    std::cerr << fmt::format("verifying mirror {} ({} -> {}) ...\n", name, mirror->source,
                             mirror->target);
  }
  VerifyResult r;
  try {
    auto ops = kind->make_mirror_ops(ctx);
    if (!ops) throw std::runtime_error("no failover operations for this mirror");
    r = ops->verify(std::chrono::seconds(timeout_s));
  } catch (const std::exception& e) {
    std::cerr << fmt::format("mqdr verify: mirror {}: {}\n", name, e.what());
    return kRuntimeError;
  }
  if (json) {
    nlohmann::json out = {{"mirror", name},
                          {"equal", r.equal},
                          {"detail", r.detail},
                          {"unchecked", r.unchecked}};
    if (!r.first_difference.empty()) out["first_difference"] = r.first_difference;
    std::cout << out.dump(2) << "\n";
  } else {
    for (const auto& [item, d] : r.detail.items()) std::cout << "  " << item << ": " << d.dump() << "\n";
    for (const auto& u : r.unchecked) std::cout << "  not checked: " << u << "\n";
    if (r.equal) {
      std::cout << fmt::format("mirror {}: source and target agree ({} items compared)\n", name,
                               r.detail.size());
    } else {
      std::cout << fmt::format("mirror {}: DIFFERENCE: {}\n", name, r.first_difference);
    }
  }
  return r.equal ? kOk : kDifference;
}

}  // namespace

void register_verify_command(std::function<int(const std::string& dir)> verify_backup) {
  add_command([verify_backup](CLI::App& app,
                              const BrokerRegistry& registry) -> std::function<int()> {
    struct Args {
      std::string config, mirror, backup;
      int timeout = 120;
      bool json = false;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand(
        "verify", "Compare a mirror's source and target (--mirror), or recheck a backup (--backup)");
    cmd->add_option("-c,--config", a->config, "Config file (with --mirror)");
    auto* mirror = cmd->add_option("--mirror", a->mirror, "Mirror to compare");
    auto* backup = cmd->add_option("--backup", a->backup, "Backup directory to recheck");
    mirror->excludes(backup);
    backup->excludes(mirror);
    cmd->add_option("--timeout", a->timeout, "Seconds the mirror comparison may take")
        ->capture_default_str();
    cmd->add_flag("--json", a->json, "Print the mirror comparison as JSON");
    return [a, &registry, verify_backup]() -> int {
      if (!a->backup.empty()) return verify_backup(a->backup);
      if (a->mirror.empty()) {
        std::cerr << "mqdr verify: give --mirror NAME (with -c FILE) or --backup DIR\n";
        return kUsageError;
      }
      if (a->config.empty()) {
        std::cerr << "mqdr verify: --mirror needs -c FILE\n";
        return kUsageError;
      }
      return verify_mirror(a->config, a->mirror, a->timeout, a->json, registry);
    };
  });
}

}  // namespace mqdr::cli
