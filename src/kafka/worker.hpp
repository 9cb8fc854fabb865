#pragma once
// The Kafka mirror worker: topology sync (on refresh_interval), the record pipeline (source
// consumer group -> idempotent producer, with the exact offset map), heartbeats on the source,
// and consumer-group offset translation (on group_sync_interval).
// Lifecycle: made by the supervisor for one mirror, run() on a thread of its own until stopped.

#include <memory>
#include <optional>
#include <string>
#include <stop_token>

#include "mqdr/broker.hpp"
#include "mqdr/worker.hpp"

namespace mqdr::kafka {

// Names of the mirror's own resources.
std::string mirror_group_id(const std::string& mirror);   // consumer group on the source
std::string offset_map_topic(const std::string& mirror);  // compacted topic on the target
std::string positions_topic(const std::string& mirror);   // exactly-once positions, on the target

// The mirror copying the other way (target -> source) whose offset map lives on this mirror's
// source cluster, if any: a configured mirror with the clusters swapped (rename '{topic}'), or
// this very mirror when the context was built swapped for a failback. Used to translate group
// offsets back exactly.
std::optional<std::string> opposite_mirror(const MirrorContext& ctx);

class MirrorWorker : public Worker {
 public:
  // Throws std::invalid_argument for a context that cannot work (kinds, regexes).
  explicit MirrorWorker(MirrorContext ctx);
  ~MirrorWorker() override;

  Status run(std::stop_token stop) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqdr::kafka
