#pragma once
// NATS JetStream broker kind (src/nats, docs/nats.md): stream mirroring in relay mode (a durable
// pull consumer on the source, asynchronous publishes to the target, source acked only after the
// target's PubAck) or native mode (the target stream sources from the source stream through the
// source's JetStream domain), stream config sync, durable consumer position sync, probe and the
// failover operations (lag, final sync, promote, verify, unreplicated).

#include "mqdr/broker.hpp"

namespace mqdr::nats {

// Adds BrokerKind{make_mirror, make_probe, make_mirror_ops} for ClusterKind::nats.
void register_kind(BrokerRegistry& registry);

}  // namespace mqdr::nats
