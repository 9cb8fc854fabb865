#pragma once
// Kafka source of a mirror: a consumer in the mirror's consumer group (several mqdr processes
// share partitions), no auto-commit, read_committed. commit() commits offset+1 of the highest
// confirmed record per partition (async); close() commits synchronously.
// Thread: open/read/commit/lag/close from the pipeline's thread; set_topics() from the same one.

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kafka/rd.hpp"
#include "mqdr/source.hpp"

namespace mqdr::kafka {

struct SourceOptions {
  std::string mirror;
  ClusterConfig cluster;
  std::string group_id;            // consumer group of the mirror on the source
  std::string skip_origin;         // records whose origin header equals this are not copied
  std::map<std::string, std::string> properties;  // consumer_properties of the mirror
  int metadata_refresh_ms = 30000;
  // Called on assignment with the partitions about to be assigned; may set their offsets
  // (exactly-once resumes from positions stored on the target). May be empty.
  std::function<void(rd_kafka_topic_partition_list_t*)> on_assign;
  // Every broker of the source is down (called on a librdkafka thread, at once: the worker may
  // be busy elsewhere), and records flow again afterwards. May be empty.
  std::function<void(const std::string&)> on_source_down;
  std::function<void()> on_source_back;
};

class KafkaSource : public Source {
 public:
  explicit KafkaSource(SourceOptions options);
  ~KafkaSource() override;

  Status open() override;
  Status read(Batch& out, std::size_t max, Duration wait) override;
  Status commit(std::span<const Record> confirmed) override;
  Lag lag() override;
  void close() override;

  // (Re)subscribes to exactly these topics; empty = unsubscribe.
  Status set_topics(const std::vector<std::string>& topics);

  // Per-partition lag (topic, partition, lag records) for the status detail.
  nlohmann::json partition_detail();
  // End-to-end latency of the newest mirrored heartbeat, ms (-1 unknown).
  double heartbeat_latency_ms() const { return heartbeat_ms_.load(); }
  std::uint64_t skipped() const { return skipped_; }

  rd_kafka_t* handle() { return rk_.get(); }

 private:
  Status commit_now(bool sync);
  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* parts, void* opaque);

  SourceOptions opt_;
  ClientLabel label_;
  Handle rk_;
  rd_kafka_queue_t* queue_ = nullptr;
  std::vector<std::string> topics_;
  // Next offset to commit per partition (highest confirmed + 1), and what is already committed.
  std::map<PartitionKey, std::int64_t> confirmed_next_;
  std::map<PartitionKey, std::int64_t> committed_next_;
  std::set<PartitionKey> committed_known_;  // committed offset asked (learn_committed_positions)
  std::map<PartitionKey, std::int64_t> last_ts_;  // timestamp of the last confirmed record
  // Records handed out by read() and not yet confirmed, per partition. At 0, the consumer's
  // position (which moves past transaction markers, aborted records and skipped loop records)
  // may be committed: nothing before it is left to copy.
  std::map<PartitionKey, std::int64_t> unconfirmed_;
  void advance_idle_partitions();
  void learn_committed_positions();
  std::atomic<double> heartbeat_ms_{-1};
  std::atomic<bool> source_down_{false};
  std::uint64_t skipped_ = 0;
  std::int64_t last_error_log_ = 0;
};

}  // namespace mqdr::kafka
