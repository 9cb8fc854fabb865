// The one place where broker kinds and features are wired into the binary.
#include <iostream>

#include "mqdr/backup.hpp"
#include "mqdr/cli.hpp"
#include "mqdr/daemon_parts.hpp"
#include "mqdr/failover_commands.hpp"
#include "mqdr/failover_extension.hpp"
#include "mqdr/kafka.hpp"
#include "mqdr/nats.hpp"
#include "mqdr/rabbitmq.hpp"

namespace mqdr::cli {

void register_all_kinds(BrokerRegistry& registry) {
  kafka::register_kind(registry);
  nats::register_kind(registry);
  rabbitmq::register_kind(registry);
}

void register_all_features() {
  static bool done = false;
  if (done) return;
  done = true;
  add_daemon_extension(&make_failover_extension);
  failover::register_commands();
  add_daemon_extension(&backup::make_extension);
  backup::register_commands();
  register_verify_command(&backup::verify_command);
}

}  // namespace mqdr::cli
