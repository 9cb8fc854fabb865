#pragma once
// Which source topics a mirror copies and what they are called on the target (pure logic).
// Thread: immutable after construction, any thread.

#include <regex>
#include <set>
#include <string>
#include <vector>

#include "mqdr/config.hpp"

namespace mqdr::kafka {

// Internal topics of mqdr itself.
inline const std::string kHeartbeatTopic = "mqdr-heartbeats";
inline const std::string kOffsetMapPrefix = "mqdr-offsets.";     // + mirror name, on the target
inline const std::string kPositionsPrefix = "mqdr-positions.";   // + mirror name, on the target
// Header every mirrored record carries: the cluster it was first written to.
inline const std::string kOriginHeader = "mqdr-origin";

// Topic configs copied to the target when sync_topic_configs is on.
const std::set<std::string>& replicated_configs();

class TopicPolicy {
 public:
  // Throws std::invalid_argument naming a bad regex.
  TopicPolicy(const KafkaMirrorConfig& config, std::string source_cluster,
              std::string target_cluster);

  // Selected by topics/exclude_topics and not internal, not a loop back to the target.
  // The heartbeat topic is always selected.
  bool selected(const std::string& topic) const;
  // Why a topic is not selected (for logs); empty when it is.
  std::string reason(const std::string& topic) const;

  std::string target_topic(const std::string& source_topic) const;

  const std::string& source_cluster() const { return source_; }
  const std::string& target_cluster() const { return target_; }

 private:
  std::vector<std::regex> include_, exclude_;
  std::string rename_;
  std::string source_, target_;
  std::string loop_prefix_;  // topics named with the target's prefix came from the target
};

std::string apply_rename(const std::string& pattern, const std::string& source_cluster,
                         const std::string& topic);

}  // namespace mqdr::kafka
