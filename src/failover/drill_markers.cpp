#include "failover/drill_markers.hpp"

#include <chrono>
#include <filesystem>
#include <set>

#include <fmt/format.h>

namespace mqdr::failover {

namespace {
// Names safe in a NATS subject token, a durable name, a Kafka group id.
std::string safe(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    out += ok ? c : '-';
  }
  return out;
}
}  // namespace

MarkerRun::MarkerRun(const Config& config, const BrokerRegistry& registry,
                     const std::vector<const MirrorConfig*>& mirrors, bool reverse,
                     const std::string& group, std::function<void(const std::string&)> say)
    : say_(std::move(say)) {
  auto shared = std::make_shared<const Config>(config);
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const MirrorConfig* m : mirrors) {
    MirrorConfig mc = *m;
    if (reverse) {
      mc.name = opposite_mirror_name(m->name);
      std::swap(mc.source, mc.target);
    }
    Leg leg;
    leg.mirror = mc.name;
    leg.markers.id = fmt::format("{}-{}-{}", safe(group), now_ms, reverse ? "r" : "f");
    leg.markers.consumer = std::string(kDrillName) + "-" + safe(group);
    const BrokerKind* kind = registry.find(mc.kind);
    if (kind == nullptr || !kind->make_mirror_ops) {
      report_[leg.mirror] = {{"unchecked", "this build has no failover operations for " +
                                               std::string(to_string(mc.kind))}};
      continue;
    }
    MirrorContext ctx;
    ctx.config = shared;
    ctx.mirror = mc;
    ctx.source = *shared->cluster(mc.source);
    ctx.target = *shared->cluster(mc.target);
    ctx.stats = std::make_shared<WorkerStats>(mc.name, to_string(mc.kind));
    ctx.state_dir = shared->daemon.state_dir / "mirrors" / mc.name;
    try {
      leg.ops = kind->make_mirror_ops(ctx);
    } catch (const std::exception& e) {
      report_[leg.mirror] = {{"unchecked", e.what()}};
      continue;
    }
    legs_.push_back(std::move(leg));
  }
}

std::string MarkerRun::write(Duration deadline) {
  for (auto& leg : legs_) {
    say_(fmt::format("drill: markers through mirror {}", leg.mirror));
    Status st = leg.ops->drill_prepare(deadline);
    if (st.is_fatal()) {
      // No marker channel for this mirror's config (e.g. Kafka heartbeats off): said, not failed.
      report_[leg.mirror] = {{"unchecked", st.message()}};
      continue;
    }
    if (!st.is_ok()) return fmt::format("mirror {}: {}", leg.mirror, st.message());
    st = leg.ops->drill_write(leg.markers, kMarkers, kConsumed, deadline);
    if (!st.is_ok()) return fmt::format("mirror {}: drill markers: {}", leg.mirror, st.message());
    leg.active = true;
    report_[leg.mirror] = {{"id", leg.markers.id},
                           {"consumer", leg.markers.consumer},
                           {"written", leg.markers.written},
                           {"consumed", leg.markers.consumed},
                           {"where", leg.markers.detail}};
  }
  return "";
}

int MarkerRun::check(Duration deadline, std::string& error) {
  int lost = 0;
  for (auto& leg : legs_) {
    if (!leg.active) continue;
    DrillCheck c;
    Status st = leg.ops->drill_check(leg.markers, c, deadline);
    if (!st.is_ok()) {
      error = fmt::format("mirror {}: counting the drill markers: {}", leg.mirror, st.message());
      report_[leg.mirror]["check_error"] = st.message();
      continue;
    }
    auto j = to_json(c);
    for (auto it = j.begin(); it != j.end(); ++it) report_[leg.mirror][it.key()] = it.value();
    // A marker missed by the resuming consumer is lost to the application too.
    std::set<int> missing(c.lost.begin(), c.lost.end());
    missing.insert(c.resume_missing.begin(), c.resume_missing.end());
    lost += static_cast<int>(missing.size());
    say_(fmt::format("drill: mirror {}: {} of {} markers on the target, {} lost; consumer resumed "
                     "with {} of {} unconsumed, {} redelivered",
                     leg.mirror, c.on_target, leg.markers.written, c.lost.size(), c.resumed,
                     leg.markers.written - leg.markers.consumed, c.redelivered));
  }
  return lost;
}

}  // namespace mqdr::failover
