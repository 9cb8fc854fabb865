#pragma once
// Topology sync of a Kafka mirror: selected source topics exist on the target (renamed) with the
// same partition count and the replicated configs. Topics are created and grown, never deleted
// or shrunk. Thread: the worker's; every call returns within its timeout.

#include <string>
#include <vector>

#include "kafka/rd.hpp"
#include "kafka/topics.hpp"

namespace mqdr::kafka {

struct TopologyResult {
  std::vector<std::string> selected;  // source topic names to consume
  std::vector<std::string> created;   // target topics created in this pass
  std::vector<std::string> grown;     // target topics given more partitions
  std::vector<std::string> reconfigured;
};

class Topology {
 public:
  Topology(std::string mirror, const TopicPolicy& policy, bool sync_configs, rd_kafka_t* source,
           rd_kafka_t* target, int timeout_ms);

  // One pass. Throws KafkaError.
  TopologyResult sync();

  // Makes sure `target_topic` has at least `partitions` (used by the sink when it meets a new
  // partition before the next pass). Returns the count it has. Throws KafkaError.
  int ensure_partitions(const std::string& target_topic, int partitions);

 private:
  std::string mirror_;
  const TopicPolicy& policy_;
  bool sync_configs_;
  rd_kafka_t* source_;
  rd_kafka_t* target_;
  int timeout_ms_;
};

}  // namespace mqdr::kafka
