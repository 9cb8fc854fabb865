#include "kafka/topics.hpp"

#include <stdexcept>

namespace mqdr::kafka {

const std::set<std::string>& replicated_configs() {
  static const std::set<std::string> names = {
      "cleanup.policy",        "compression.type",      "delete.retention.ms",
      "max.compaction.lag.ms", "max.message.bytes",     "message.timestamp.type",
      "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "retention.bytes",
      "retention.ms",          "segment.bytes",         "segment.ms",
  };
  return names;
}

std::string apply_rename(const std::string& pattern, const std::string& source_cluster,
                         const std::string& topic) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size();) {
    if (pattern.compare(i, 8, "{source}") == 0) {
      out += source_cluster;
      i += 8;
    } else if (pattern.compare(i, 7, "{topic}") == 0) {
      out += topic;
      i += 7;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

namespace {
std::vector<std::regex> compile(const std::vector<std::string>& patterns, const char* key) {
  std::vector<std::regex> out;
  for (const auto& p : patterns) {
    try {
      out.emplace_back(p, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument(std::string(key) + ": invalid regex '" + p + "': " + e.what());
    }
  }
  return out;
}
}  // namespace

TopicPolicy::TopicPolicy(const KafkaMirrorConfig& config, std::string source_cluster,
                         std::string target_cluster)
    : include_(compile(config.topics, "topics")),
      exclude_(compile(config.exclude_topics, "exclude_topics")),
      rename_(config.rename.empty() ? "{topic}" : config.rename),
      source_(std::move(source_cluster)),
      target_(std::move(target_cluster)) {
  // With a '{source}' policy, what the reverse mirror wrote here starts with the name it gives
  // the target's topics: '{source}.{topic}' -> 'target.'.
  auto pos = rename_.find("{topic}");
  if (rename_.find("{source}") != std::string::npos && pos != std::string::npos) {
    loop_prefix_ = apply_rename(rename_.substr(0, pos), target_, "");
  }
}

std::string TopicPolicy::reason(const std::string& topic) const {
  if (topic == kHeartbeatTopic) return {};
  if (topic.rfind("__", 0) == 0) return "internal topic";
  if (topic.rfind(kOffsetMapPrefix, 0) == 0 || topic.rfind(kPositionsPrefix, 0) == 0) {
    return "mqdr internal topic";
  }
  if (!loop_prefix_.empty() && topic.rfind(loop_prefix_, 0) == 0) {
    return "already a copy from cluster '" + target_ + "' (would loop)";
  }
  bool in = false;
  for (const auto& r : include_) {
    if (std::regex_match(topic, r)) {
      in = true;
      break;
    }
  }
  if (!in) return "not matched by topics";
  for (const auto& r : exclude_) {
    if (std::regex_match(topic, r)) return "matched by exclude_topics";
  }
  return {};
}

bool TopicPolicy::selected(const std::string& topic) const { return reason(topic).empty(); }

std::string TopicPolicy::target_topic(const std::string& source_topic) const {
  return apply_rename(rename_, source_, source_topic);
}

}  // namespace mqdr::kafka
