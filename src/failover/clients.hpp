#pragma once
// The clients file of a failover group (SPEC.md "Failover"): where applications find the active
// cluster of each pair, keyed by the primary's cluster names they are configured with. Formats:
// json, env (KEY=value lines for systemd EnvironmentFile / docker --env-file / sh), yaml.
// Never contains a secret: user info (user:password@) is removed from every URI.

#include <chrono>
#include <cstdint>
#include <string>

#include "mqdr/config.hpp"

namespace mqdr::failover {

struct ClientsView {
  std::uint64_t epoch = 0;
  std::string state;        // the group state written (failed_over, replicating, ...)
  bool standby_active = false;
  std::chrono::system_clock::time_point switched_at{};
};

// "amqp://user:pw@host:5672/v" -> "amqp://host:5672/v"; strings without "://" are unchanged.
std::string strip_userinfo(const std::string& uri);

// Renders the file content. Throws std::runtime_error when a pair names an unknown cluster.
std::string render_clients(const Config& config, const FailoverGroupConfig& group,
                           const ClientsView& view);

// Renders and writes group.clients.file atomically (temp + fsync + rename). No-op when no file is
// configured. Throws std::runtime_error on IO errors.
void write_clients_file(const Config& config, const FailoverGroupConfig& group,
                        const ClientsView& view);

}  // namespace mqdr::failover
