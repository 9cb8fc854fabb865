#pragma once
// Failover-time operations on one Kafka mirror (mqdr::MirrorOps): lag, the final group-offset
// sync (exact translation through the offset map), promote, verify and what was not replicated.
// Each call opens what it needs and returns within its deadline. Thread: one caller at a time.

#include "kafka/rd.hpp"
#include "kafka/topics.hpp"
#include "mqdr/broker.hpp"

namespace mqdr::kafka {

class KafkaMirrorOps : public MirrorOps {
 public:
  explicit KafkaMirrorOps(MirrorContext ctx);

  Lag lag(Duration timeout) override;
  Status final_sync(Duration deadline) override;
  Status promote(Duration deadline) override;
  VerifyResult verify(Duration deadline) override;
  nlohmann::json unreplicated(Duration deadline) override;
  // Markers in partition 0 of the heartbeat topic (src/kafka/drill.cpp).
  Status drill_prepare(Duration deadline) override;
  Status drill_write(DrillMarkers& markers, int count, int consume, Duration deadline) override;
  Status drill_check(const DrillMarkers& markers, DrillCheck& out, Duration deadline) override;

 private:
  struct PartitionRange {
    std::string topic;
    std::int32_t partition = 0;
    std::int64_t low = 0, high = 0;  // source watermarks
    std::int64_t mirrored = -1;      // mirror group's committed offset (-1: none)
  };
  // Selected source partitions with their watermarks and the mirror's committed offset.
  std::vector<PartitionRange> ranges(int timeout_ms);

  MirrorContext ctx_;
  TopicPolicy policy_;
  ClientLabel src_label_, tgt_label_;
  Handle src_, tgt_;
};

}  // namespace mqdr::kafka
