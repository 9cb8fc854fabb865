#pragma once
// Consumer-group offset sync of a Kafka mirror: for every source group matching `groups` that is
// not active on the target, commits on the target the exact translation (through the offset
// map) of the group's committed source offsets. Thread: the caller's, one at a time.

#include <map>
#include <regex>
#include <string>
#include <vector>

#include "kafka/map_reader.hpp"
#include "kafka/rd.hpp"
#include "kafka/topics.hpp"

namespace mqdr::kafka {

struct GroupSyncResult {
  int synced = 0;          // groups whose target offsets were written
  int unchanged = 0;       // groups already up to date
  int skipped_active = 0;  // groups with members on the target
  std::vector<std::string> errors;
};

class GroupSync {
 public:
  // Throws std::invalid_argument on a bad regex.
  GroupSync(std::string mirror, const std::vector<std::string>& groups, const TopicPolicy& policy,
            rd_kafka_t* source, rd_kafka_t* target, MapReader& map, std::string own_group);

  // Failback: `forward` reads the offset map of the opposite mirror (target -> source of this
  // one, stored on this mirror's source cluster); its copies translate back exactly.
  void set_forward(MapReader* forward) { forward_ = forward; }

  // One pass. `force` writes even what seems unchanged (final sync). Throws KafkaError when a
  // cluster does not answer; per-group failures are listed in the result.
  GroupSyncResult run(int timeout_ms, bool force);

  // The translation alone (used by run() and by tests): source group offsets -> target offsets.
  GroupOffsets translate(const GroupOffsets& source_offsets) const;

 private:
  bool wanted(const std::string& group) const;

  std::string mirror_;
  std::vector<std::regex> groups_;
  const TopicPolicy& policy_;
  rd_kafka_t* source_;
  rd_kafka_t* target_;
  MapReader& map_;
  std::string own_group_;
  MapReader* forward_ = nullptr;
  std::map<std::string, GroupOffsets> written_;  // last offsets written per group
};

}  // namespace mqdr::kafka
