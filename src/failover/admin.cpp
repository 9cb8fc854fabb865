#include "mqdr/failover_admin.hpp"

#include <fmt/format.h>

namespace mqdr {

namespace {

bool truthy(const std::string& v) { return v == "true" || v == "1" || v == "yes"; }

bool force_of(const std::map<std::string, std::string>& query, const nlohmann::json& body) {
  if (auto it = query.find("force"); it != query.end() && truthy(it->second)) return true;
  return body.is_object() && body.value("force", false);
}

}  // namespace

HttpAnswer to_http(const Decision& d, const std::string& group) {
  HttpAnswer a;
  switch (d.kind) {
    case Decision::Kind::started:
      a.status = 202;
      a.body = {{"group", group}, {"decision", "started"}, {"reason", d.reason}};
      break;
    case Decision::Kind::refused:
      a.status = 409;
      a.body = {{"group", group}, {"decision", "refused"}, {"error", d.reason}};
      break;
    case Decision::Kind::not_found:
      a.status = 404;
      a.body = {{"group", group}, {"error", d.reason}};
      break;
  }
  return a;
}

AdminServer::PostHandler failover_post_handler(FailoverController& controller) {
  return [&controller](const std::vector<std::string>& captures,
                       const std::map<std::string, std::string>& query,
                       const nlohmann::json& body) {
    std::string group = captures.empty() ? "" : captures[0];
    std::string reason;
    if (auto it = query.find("reason"); it != query.end()) reason = it->second;
    if (body.is_object() && body.contains("reason") && body["reason"].is_string()) {
      reason = body["reason"].get<std::string>();
    }
    return to_http(controller.request_failover(group, force_of(query, body), reason), group);
  };
}

AdminServer::PostHandler failback_post_handler(FailoverController& controller) {
  return [&controller](const std::vector<std::string>& captures,
                       const std::map<std::string, std::string>& query,
                       const nlohmann::json& body) {
    std::string group = captures.empty() ? "" : captures[0];
    return to_http(controller.request_failback(group, force_of(query, body)), group);
  };
}

std::vector<MetricFamily> failover_metric_families(const FailoverMetrics& m) {
  MetricFamily state{"mqdr_failover_state", "Failover group state (1 for the current one)",
                     MetricFamily::Type::gauge, {}};
  MetricFamily epoch{"mqdr_failover_epoch", "Failover group epoch (fencing token)",
                     MetricFamily::Type::gauge, {}};
  MetricFamily standby{"mqdr_failover_active_standby", "1 when clients use the standby side",
                       MetricFamily::Type::gauge, {}};
  MetricFamily switches{"mqdr_failover_switches_total", "Completed switches since start",
                        MetricFamily::Type::counter, {}};
  MetricFamily up{"mqdr_failover_cluster_up", "Last failover probe of the cluster succeeded",
                  MetricFamily::Type::gauge, {}};
  MetricFamily latency{"mqdr_failover_probe_latency_seconds",
                       "Latency of the last failover probe of the cluster",
                       MetricFamily::Type::gauge, {}};
  for (const auto& g : m.groups) {
    for (const auto& s : m.states) {
      state.samples.push_back({{{"group", g.group}, {"state", s}}, s == g.state ? 1.0 : 0.0});
    }
    epoch.samples.push_back({{{"group", g.group}}, static_cast<double>(g.epoch)});
    standby.samples.push_back({{{"group", g.group}}, g.active == "standby" ? 1.0 : 0.0});
    switches.samples.push_back(
        {{{"group", g.group}, {"kind", "failover"}}, static_cast<double>(g.failovers_total)});
    switches.samples.push_back(
        {{{"group", g.group}, {"kind", "failback"}}, static_cast<double>(g.failbacks_total)});
  }
  for (const auto& c : m.clusters) {
    up.samples.push_back({{{"cluster", c.cluster}}, c.up ? 1.0 : 0.0});
    latency.samples.push_back({{{"cluster", c.cluster}}, c.probe_latency_seconds});
  }
  return {state, epoch, standby, switches, up, latency};
}

}  // namespace mqdr
