#pragma once
// RabbitMQ broker kind (src/rabbitmq): exchange mirroring through capture queues, queue shovels,
// definitions sync, standby queue trimming, probe. See docs/rabbitmq.md.

#include "mqdr/broker.hpp"

namespace mqdr::rabbitmq {

// Adds ClusterKind::rabbitmq (make_mirror, make_probe, make_mirror_ops) to `registry`.
void register_kind(BrokerRegistry& registry);

}  // namespace mqdr::rabbitmq
