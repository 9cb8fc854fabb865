#pragma once
// The Kafka broker kind (src/kafka): mirror worker (MirrorMaker-2-grade replication with exact
// consumer-offset translation), probe and failover operations. See docs/kafka.md.

#include "mqdr/broker.hpp"

namespace mqdr::kafka {

// Adds ClusterKind::kafka with make_mirror, make_probe and make_mirror_ops.
void register_kind(BrokerRegistry& registry);

}  // namespace mqdr::kafka
