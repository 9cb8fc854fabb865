#pragma once
// Kafka probe: proves a cluster serves clients with a metadata request, then a produce (acks=all)
// and a fetch of that record on the internal topic `mqdr-probe` (created on first use).
// Thread: one caller at a time; keeps its clients between checks.

#include <memory>

#include "kafka/rd.hpp"
#include "mqdr/broker.hpp"

namespace mqdr::kafka {

inline const std::string kProbeTopic = "mqdr-probe";

// True when every bootstrap server actively refuses TCP connections right now (a dead broker
// process on a live host), found within `wait_ms`.
bool every_server_refuses(const std::string& bootstrap, int wait_ms);

class KafkaProbe : public Probe {
 public:
  explicit KafkaProbe(ClusterConfig cluster);
  ProbeResult check(Duration timeout) override;

 private:
  static void dr_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque);

  ClusterConfig cluster_;
  ClientLabel producer_label_, consumer_label_;
  Handle producer_, consumer_;
  bool topic_ready_ = false;
  std::uint64_t seq_ = 0;
  // Set by the delivery report of the last probe record.
  bool delivered_ = false;
  rd_kafka_resp_err_t delivery_err_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::int64_t delivered_offset_ = -1;
};

}  // namespace mqdr::kafka
