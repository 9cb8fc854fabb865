// The one place where broker kinds are wired into the binary.
#include "mqdr/cli.hpp"
#include "mqdr/kafka.hpp"
#include "mqdr/nats.hpp"
#include "mqdr/rabbitmq.hpp"

namespace mqdr::cli {

void register_all_kinds(BrokerRegistry& registry) {
  kafka::register_kind(registry);
  nats::register_kind(registry);
  rabbitmq::register_kind(registry);
}

}  // namespace mqdr::cli
