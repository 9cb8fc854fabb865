#pragma once
// Reads a mirror's offset-map topic on the target into an OffsetMap, incrementally: the first
// catch_up() reads it from the beginning, later ones only what was added since.
// Thread: one caller at a time.

#include <map>
#include <string>

#include "kafka/offset_map.hpp"
#include "kafka/rd.hpp"

namespace mqdr::kafka {

class MapReader {
 public:
  MapReader(const ClusterConfig& target, std::string topic, std::string mirror);
  ~MapReader();

  // Reads up to the current end of the topic. Throws KafkaError (retryable) when the target
  // does not answer within `timeout_ms`; a missing topic is an empty map.
  void catch_up(int timeout_ms);

  const OffsetMap& map() const { return map_; }
  OffsetMap& map() { return map_; }

 private:
  ClusterConfig target_;
  std::string topic_;
  ClientLabel label_;
  Handle rk_;
  std::int64_t next_ = 0;  // next offset of the map topic to apply
  bool assigned_ = false;
  OffsetMap map_;
};

// exactly_once: the source positions stored on the target ("<source topic>|<partition>" -> next
// offset), read to the end with read_committed. Throws KafkaError.
std::map<PartitionKey, std::int64_t> read_positions(const ClusterConfig& target,
                                                    const std::string& topic,
                                                    const std::string& mirror, int timeout_ms);

}  // namespace mqdr::kafka
