// Drill markers shared by every broker kind (mqdr/broker.hpp) and the MirrorOps defaults for
// kinds without a marker channel.

#include <charconv>

#include "mqdr/broker.hpp"

namespace mqdr {

std::string drill_marker(const std::string& drill_id, int n) {
  return std::string(kDrillName) + "/" + drill_id + "/" + std::to_string(n);
}

std::optional<int> parse_drill_marker(std::string_view text, const std::string& drill_id) {
  const std::string prefix = std::string(kDrillName) + "/" + drill_id + "/";
  if (text.size() <= prefix.size() || text.substr(0, prefix.size()) != prefix) return std::nullopt;
  const std::string_view num = text.substr(prefix.size());
  int n = -1;
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
  if (ec != std::errc() || end != num.data() + num.size() || n < 0) return std::nullopt;
  return n;
}

bool carries_drill_markers(const Config& config, const MirrorConfig& mirror) {
  for (const auto& g : config.failover) {
    for (const auto& p : g.pairs) {
      if ((p.primary == mirror.source && p.standby == mirror.target) ||
          (p.primary == mirror.target && p.standby == mirror.source)) {
        return true;
      }
    }
  }
  return false;
}

nlohmann::json to_json(const DrillCheck& c) {
  nlohmann::json j = {{"on_target", c.on_target}, {"lost", c.lost}};
  nlohmann::json r = {{"checked", c.resume_checked}};
  if (c.resume_checked) {
    r["resumed"] = c.resumed;
    r["missing"] = c.resume_missing;
    r["redelivered"] = c.redelivered;
  } else {
    r["why"] = c.resume_unchecked;
  }
  j["consumer_resume"] = std::move(r);
  if (!c.detail.empty()) j["detail"] = c.detail;
  return j;
}

void count_resume(const DrillMarkers& markers, const std::function<bool(int)>& delivered,
                  DrillCheck& out) {
  out.resume_checked = true;
  for (int n = 0; n < markers.written; ++n) {
    const bool got = delivered(n);
    if (n < markers.consumed) {
      if (got) ++out.redelivered;
    } else if (got) {
      ++out.resumed;
    } else {
      out.resume_missing.push_back(n);
    }
  }
}

Status MirrorOps::drill_prepare(Duration) {
  return Status::fatal("this broker kind has no drill marker channel");
}
Status MirrorOps::drill_write(DrillMarkers&, int, int, Duration) {
  return Status::fatal("this broker kind has no drill marker channel");
}
Status MirrorOps::drill_check(const DrillMarkers&, DrillCheck&, Duration) {
  return Status::fatal("this broker kind has no drill marker channel");
}

}  // namespace mqdr
