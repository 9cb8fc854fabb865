#pragma once
// Glue between the FailoverController and the admin HTTP API (SPEC.md "Admin HTTP API"), so the
// daemon wiring is three lines:
//   daemon.add_post_route(R"(/v1/failover/([^/]+))", failover_post_handler(controller));
//   daemon.add_post_route(R"(/v1/failback/([^/]+))", failback_post_handler(controller));
//   daemon.set_extra_metrics([&] { return failover_metric_families(controller.metrics()); });
// The bearer token is checked by the AdminServer before a handler runs (401).

#include <vector>

#include "mqdr/admin.hpp"
#include "mqdr/failover.hpp"

namespace mqdr {

// POST /v1/failover/{group}?force=true, optional JSON body {"reason": "...", "force": true}.
// 202 {"group","decision":"started","reason","epoch"} | 404 | 409 {"error": reason}.
// `controller` must outlive the handler.
AdminServer::PostHandler failover_post_handler(FailoverController& controller);
// POST /v1/failback/{group} (?force=true to fail back with a lagging reverse mirror).
AdminServer::PostHandler failback_post_handler(FailoverController& controller);

// Answer for a Decision (202 / 404 / 409), shared by both handlers.
HttpAnswer to_http(const Decision& decision, const std::string& group);

// mqdr_failover_state{group,state} (1/0), mqdr_failover_epoch{group},
// mqdr_failover_active_standby{group} (1 when clients use the standby),
// mqdr_failover_switches_total{group,kind}, mqdr_failover_cluster_up{cluster} and
// mqdr_failover_probe_latency_seconds{cluster} (the controller's own probes of the groups'
// clusters; the daemon's ClusterMonitor keeps mqdr_cluster_up).
std::vector<MetricFamily> failover_metric_families(const FailoverMetrics& metrics);

}  // namespace mqdr
