#pragma once
// Failover-time operations of a RabbitMQ mirror (mqdr::MirrorOps) and the cluster probe.

#include "mqdr/broker.hpp"

namespace mqdr::rabbitmq {

// Connect + a passive declare (proves the vhost serves clients) + the management aliveness test
// when management_uri is set. Keeps its connection between checks.
ProbePtr make_probe(const ClusterConfig& cluster);

// lag: capture/shovel queue depths on the source (age from the worker's live figures);
// final_sync: one definitions pass; promote: standby trimming to the primary's last observed
// depth + standby_margin; verify: definitions present on the target and nothing left to mirror;
// unreplicated: what the capture/shovel queues of the old primary still hold.
MirrorOpsPtr make_mirror_ops(const MirrorContext& ctx);

}  // namespace mqdr::rabbitmq
