#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <memory>
#include <vector>

#include "mqdr/cli.hpp"
#include "mqdr/config_loader.hpp"
#include "mqdr/daemon.hpp"

namespace mqdr::cli {

int print_status(const Config& config, bool json);

namespace {

std::vector<CommandSetup>& extra_commands() {
  static std::vector<CommandSetup> commands;
  return commands;
}

// Two passes: the document itself (types, keys, references, ...: errors, exit 2), then what it
// needs from this host (the files it names, ${ENV} variables, hooks): warnings, because a config
// is often checked on another machine than the one that runs it, or errors with --strict (on the
// host that runs it, where `mqdr run` would refuse them).
int validate(const std::string& file, bool strict) {
  std::vector<config::Problem> warnings;
  try {
    config::LoadOptions document;
    document.host_checks = false;
    Config c = config::load(file, document, &warnings);
    for (const auto& w : warnings) std::cerr << w.str() << "\n";
    std::vector<config::Problem> host;
    std::vector<config::Problem> host_warnings;
    try {
      (void)config::load(file, {}, &host_warnings);
    } catch (const config::Error& e) {
      for (const auto& p : e.problems()) (p.warning ? host_warnings : host).push_back(p);
    }
    // Warnings only the host pass can give (e.g. a world-readable secret file).
    for (const auto& w : host_warnings) {
      const bool seen = std::any_of(warnings.begin(), warnings.end(),
                                    [&](const config::Problem& d) { return d.str() == w.str(); });
      if (!seen) std::cerr << w.str() << "\n";
    }
    for (auto p : host) {
      if (!strict) {
        p.warning = true;
        p.message += " (on this host; `mqdr run` here would refuse it)";
      }
      std::cerr << p.str() << "\n";
    }
    if (strict && !host.empty()) {
      std::cerr << file << ": " << host.size()
                << (host.size() == 1 ? " problem" : " problems") << " on this host\n";
      return kUsageError;
    }
    std::cout << file << ": ok (" << c.clusters.size() << " clusters, " << c.mirrors.size()
              << " mirrors, " << c.failover.size() << " failover groups, " << c.backups.size()
              << " backup plans)\n";
    return kOk;
  } catch (const config::Error& e) {
    for (const auto& p : e.problems()) std::cerr << p.str() << "\n";
    std::size_t errors = 0;
    for (const auto& p : e.problems()) errors += p.warning ? 0 : 1;
    std::cerr << file << ": " << errors << (errors == 1 ? " problem" : " problems") << "\n";
    return kUsageError;
  }
}

}  // namespace

void add_command(CommandSetup setup) { extra_commands().push_back(std::move(setup)); }

std::optional<Config> load_config_or_report(const std::string& file, bool print_warnings) {
  try {
    std::vector<config::Problem> warnings;
    Config c = config::load(file, {}, &warnings);
    if (print_warnings) {
      for (const auto& w : warnings) std::cerr << w.str() << "\n";
    }
    return c;
  } catch (const config::Error& e) {
    for (const auto& p : e.problems()) std::cerr << p.str() << "\n";
    return std::nullopt;
  }
}

int main(int argc, char** argv) {
  BrokerRegistry registry;
  register_all_kinds(registry);
  register_all_features();

  CLI::App app{"mqdr: disaster recovery for Kafka, NATS JetStream and RabbitMQ"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("mqdr ") + MQDR_VERSION);
  std::string config_file;

  auto* run = app.add_subcommand("run", "Run the daemon in the foreground (systemd Type=notify)");
  run->add_option("-c,--config", config_file, "Config file")->required();

  auto* validate_cmd =
      app.add_subcommand("validate", "Check a config, print every problem, exit 0 or 2");
  validate_cmd->add_option("-c,--config", config_file, "Config file")->required();
  bool strict = false;
  validate_cmd->add_flag("--strict", strict,
                         "Also fail (exit 2) when this host lacks what the config needs: the "
                         "files it names (secrets, TLS, hooks) and its ${ENV} variables");

  bool json = false;
  auto* status = app.add_subcommand("status", "Ask the running daemon: mirrors, lag, clusters, failover");
  status->add_option("-c,--config", config_file, "Config file")->required();
  status->add_flag("--json", json, "Print the status as JSON");

  auto* version = app.add_subcommand("version", "Print the version");

  std::vector<std::pair<CLI::App*, std::function<int()>>> extra;
  for (auto& setup : extra_commands()) {
    const auto before = app.get_subcommands({}).size();
    auto runner = setup(app, registry);
    auto subs = app.get_subcommands({});
    if (subs.size() > before) extra.emplace_back(subs.back(), std::move(runner));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kOk : kUsageError;
  }

  try {
    if (*run) return run_daemon(config_file, registry);
    if (*validate_cmd) return validate(config_file, strict);
    if (*status) {
      auto c = load_config_or_report(config_file, false);
      if (!c) return kUsageError;
      return print_status(*c, json);
    }
    if (*version) {
      std::cout << "mqdr " << MQDR_VERSION << "\n";
      return kOk;
    }
    for (auto& [sub, runner] : extra) {
      if (*sub) return runner();
    }
  } catch (const std::exception& e) {
    std::cerr << "mqdr: " << e.what() << "\n";
    return kRuntimeError;
  }
  return kUsageError;
}

}  // namespace mqdr::cli
