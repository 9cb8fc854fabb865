#pragma once
// The `mqdr` command line (SPEC.md "Command line"). main() only calls cli::main().
// Exit codes: 0 success; 1 runtime failure; 2 usage or configuration error; 3 a verification
// found a difference or corruption.

#include <functional>
#include <optional>
#include <string>

#include "mqdr/broker.hpp"
#include "mqdr/config.hpp"

namespace CLI {
class App;
}

namespace mqdr::cli {

inline constexpr int kOk = 0;
inline constexpr int kRuntimeError = 1;
inline constexpr int kUsageError = 2;
inline constexpr int kDifference = 3;

// Registers every broker kind built into this binary (src/cli/wiring.cpp).
void register_all_kinds(BrokerRegistry& registry);

// A subcommand contributed by an area (failover, backup, verify ...): `setup` adds it to the app
// and returns the function that runs it once parsed.
using CommandSetup = std::function<std::function<int()>(CLI::App& app, const BrokerRegistry&)>;
void add_command(CommandSetup setup);

// `mqdr verify` (src/cli/verify.cpp): --mirror is answered here, --backup DIR by
// `verify_backup` (the backup area), which returns the exit code.
void register_verify_command(std::function<int(const std::string& dir)> verify_backup);

// Registers the commands and daemon extensions of every feature built into this binary
// (src/cli/wiring.cpp); main() calls it once.
void register_all_features();

// Loads a config for a command; prints every problem (and the warnings when asked) to stderr and
// returns nullopt on error (the command then exits 2).
std::optional<Config> load_config_or_report(const std::string& file, bool print_warnings = false);

int main(int argc, char** argv);

}  // namespace mqdr::cli
