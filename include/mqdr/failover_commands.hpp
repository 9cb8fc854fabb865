#pragma once
// `mqdr failover`, `mqdr failback` and `mqdr drill`: clients of the running daemon's admin API
// (src/failover/commands.cpp). Registered by src/cli/wiring.cpp.

namespace mqdr::failover {

void register_commands();

}  // namespace mqdr::failover
