#include "kafka/topology.hpp"

#include <spdlog/spdlog.h>

namespace mqdr::kafka {

namespace {
TopicConfigs allowlisted(const TopicConfigs& all) {
  TopicConfigs out;
  for (const auto& [k, v] : all) {
    if (replicated_configs().count(k) != 0) out[k] = v;
  }
  return out;
}
}  // namespace

Topology::Topology(std::string mirror, const TopicPolicy& policy, bool sync_configs,
                   rd_kafka_t* source, rd_kafka_t* target, int timeout_ms)
    : mirror_(std::move(mirror)),
      policy_(policy),
      sync_configs_(sync_configs),
      source_(source),
      target_(target),
      timeout_ms_(timeout_ms) {}

TopologyResult Topology::sync() {
  TopologyResult res;
  ClusterMeta src = fetch_metadata(source_, timeout_ms_);
  ClusterMeta tgt = fetch_metadata(target_, timeout_ms_);
  for (const auto& [name, meta] : src.topics) {
    if (policy_.selected(name)) res.selected.push_back(name);
  }
  std::map<std::string, TopicConfigs> src_cfg;
  std::map<std::string, TopicConfigs> tgt_cfg;
  if (sync_configs_) {
    src_cfg = describe_topic_configs(source_, res.selected, timeout_ms_);
    std::vector<std::string> existing;
    for (const auto& s : res.selected) {
      auto t = policy_.target_topic(s);
      if (tgt.topics.count(t) != 0) existing.push_back(t);
    }
    tgt_cfg = describe_topic_configs(target_, existing, timeout_ms_);
  }

  std::vector<NewTopicSpec> to_create;
  for (const auto& s : res.selected) {
    const std::string t = policy_.target_topic(s);
    const int want = src.topics.at(s).partitions;
    TopicConfigs cfg = sync_configs_ ? allowlisted(src_cfg[s]) : TopicConfigs{};
    auto it = tgt.topics.find(t);
    if (it == tgt.topics.end()) {
      to_create.push_back(NewTopicSpec{t, want, cfg});
      continue;
    }
    if (it->second.partitions < want) {
      create_partitions(target_, t, want, timeout_ms_);
      res.grown.push_back(t);
      spdlog::info("mirror={} target topic {} grown from {} to {} partitions", mirror_, t,
                   it->second.partitions, want);
    }
    if (sync_configs_ && allowlisted(tgt_cfg[t]) != cfg) {
      // AlterConfigs replaces the topic's dynamic configs: keep the target's own non-replicated
      // ones and set the replicated ones to the source's values.
      TopicConfigs merged = tgt_cfg[t];
      for (const auto& name : replicated_configs()) merged.erase(name);
      for (const auto& [k, v] : cfg) merged[k] = v;
      alter_topic_configs(target_, t, merged, timeout_ms_);
      res.reconfigured.push_back(t);
      spdlog::info("mirror={} target topic {} configs updated from source topic {}", mirror_, t, s);
    }
  }
  if (!to_create.empty()) {
    create_topics(target_, to_create, timeout_ms_);
    for (const auto& n : to_create) {
      res.created.push_back(n.name);
      spdlog::info("mirror={} target topic {} created ({} partitions, {} configs)", mirror_,
                   n.name, n.partitions, n.configs.size());
    }
  }
  return res;
}

int Topology::ensure_partitions(const std::string& target_topic, int partitions) {
  ClusterMeta tgt = fetch_metadata(target_, timeout_ms_, &target_topic);
  auto it = tgt.topics.find(target_topic);
  if (it == tgt.topics.end()) {
    create_topics(target_, {NewTopicSpec{target_topic, partitions, {}}}, timeout_ms_);
    spdlog::info("mirror={} target topic {} created ({} partitions)", mirror_, target_topic,
                 partitions);
    return partitions;
  }
  if (it->second.partitions >= partitions) return it->second.partitions;
  create_partitions(target_, target_topic, partitions, timeout_ms_);
  spdlog::info("mirror={} target topic {} grown from {} to {} partitions", mirror_, target_topic,
               it->second.partitions, partitions);
  return partitions;
}

}  // namespace mqdr::kafka
