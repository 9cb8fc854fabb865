#pragma once
// The marker traffic of `mqdr drill` (docs/failover.md "Drills"): through each mirror of the group
// (MirrorOps::drill_*), markers are written and partly consumed on the side that is active,
// and after the switch counted on the other side: lost markers (the RPO of the drill) and what the
// drill's consumer receives when it resumes there.

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mqdr/broker.hpp"
#include "mqdr/config.hpp"

namespace mqdr::failover {

class MarkerRun {
 public:
  static constexpr int kMarkers = 100;  // per mirror
  static constexpr int kConsumed = 50;  // taken by the drill's consumer before the switch

  // `mirrors`: the group's forward mirrors; `reverse`: markers go through their reverse
  // mirrors (standby -> primary, written while failed over, checked after the failback).
  MarkerRun(const Config& config, const BrokerRegistry& registry,
            const std::vector<const MirrorConfig*>& mirrors, bool reverse, const std::string& group,
            std::function<void(const std::string&)> say);

  // Prepares each mirror's marker channel and writes the markers on its source. A mirror whose
  // kind or config has no marker channel is recorded as unchecked. Returns "" or what failed.
  std::string write(Duration deadline);
  // After the switch: counts the markers on each target. Returns the number of markers lost
  // (lost or missed by the resuming consumer); "" or what failed in `error`.
  int check(Duration deadline, std::string& error);

  // {"<mirror>": {written, consumed, on_target, lost, consumer_resume, ...}}
  const nlohmann::json& report() const { return report_; }

 private:
  struct Leg {
    std::string mirror;
    MirrorOpsPtr ops;
    DrillMarkers markers;
    bool active = false;  // markers written
  };
  std::vector<Leg> legs_;
  nlohmann::json report_ = nlohmann::json::object();
  std::function<void(const std::string&)> say_;
};

}  // namespace mqdr::failover
