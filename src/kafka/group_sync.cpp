#include "kafka/group_sync.hpp"

#include "mqdr/broker.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace mqdr::kafka {

GroupSync::GroupSync(std::string mirror, const std::vector<std::string>& groups,
                     const TopicPolicy& policy, rd_kafka_t* source, rd_kafka_t* target,
                     MapReader& map, std::string own_group)
    : mirror_(std::move(mirror)),
      policy_(policy),
      source_(source),
      target_(target),
      map_(map),
      own_group_(std::move(own_group)) {
  for (const auto& g : groups) {
    try {
      groups_.emplace_back(g, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument("groups: invalid regex '" + g + "': " + e.what());
    }
  }
}

bool GroupSync::wanted(const std::string& group) const {
  // Drill consumers (mqdr drill) are always carried over: the drill checks their resume.
  if (group.rfind(std::string(kDrillName) + "-", 0) == 0 && group != "mqdr-drill-reader") return true;
  if (group == own_group_ || group.rfind("mqdr-", 0) == 0) return false;
  for (const auto& r : groups_) {
    if (std::regex_match(group, r)) return true;
  }
  return false;
}

GroupOffsets GroupSync::translate(const GroupOffsets& source_offsets) const {
  GroupOffsets out;
  for (const auto& [tp, offset] : source_offsets) {
    if (!policy_.selected(tp.first)) continue;
    const std::string target = policy_.target_topic(tp.first);
    const PartitionMap* pm = map_.map().find(target, tp.second);
    // The opposite mirror wrote our source topic under the same name (rename '{topic}').
    const PartitionMap* fwd = forward_ != nullptr ? forward_->map().find(tp.first, tp.second) : nullptr;
    auto t = translate_back(fwd, pm, offset);
    if (t) out[{target, tp.second}] = *t;  // nullopt: nothing of this partition mirrored yet
  }
  return out;
}

GroupSyncResult GroupSync::run(int timeout_ms, bool force) {
  GroupSyncResult res;
  map_.catch_up(timeout_ms);
  if (forward_ != nullptr) forward_->catch_up(timeout_ms);
  auto source_groups = list_groups(source_, timeout_ms);
  std::map<std::string, std::string> target_state;
  for (const auto& g : list_groups(target_, timeout_ms)) target_state[g.group] = g.state;
  for (const auto& g : source_groups) {
    if (!wanted(g.group)) continue;
    auto st = target_state.find(g.group);
    if (st != target_state.end() && st->second != "Empty" && st->second != "Dead" &&
        st->second != "Unknown") {
      // Consumers of this group run on the target: their commits win.
      ++res.skipped_active;
      continue;
    }
    try {
      GroupOffsets translated = translate(list_group_offsets(source_, g.group, timeout_ms));
      if (translated.empty()) continue;
      auto& last = written_[g.group];
      if (!force && last == translated) {
        ++res.unchanged;
        continue;
      }
      alter_group_offsets(target_, g.group, translated, timeout_ms);
      last = std::move(translated);
      ++res.synced;
    } catch (const KafkaError& e) {
      // Commonly: the group became active on the target between the listing and the commit.
      res.errors.push_back(e.what());
      spdlog::warn("mirror={} group={} offset sync: {}", mirror_, g.group, e.what());
    }
  }
  return res;
}

}  // namespace mqdr::kafka
