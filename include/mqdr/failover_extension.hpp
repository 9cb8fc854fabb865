#pragma once
// The failover controller as a daemon extension (registered by src/cli/wiring.cpp).

#include <memory>

#include "mqdr/daemon_parts.hpp"

namespace mqdr {

// Always returns an extension (a reload may add failover groups); it holds a FailoverController
// while the config has groups. Throws std::runtime_error when the state directory cannot be used.
std::unique_ptr<DaemonExtension> make_failover_extension(Daemon& daemon, ConfigPtr config);

}  // namespace mqdr
