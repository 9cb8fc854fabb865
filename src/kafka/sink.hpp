#pragma once
// Kafka sink of a mirror: an idempotent producer (acks=all) to the target. Each record goes to
// the same partition number of the renamed topic, with key/value nulls, headers (plus the origin
// header) and CreateTime kept. A record counts as confirmed only once the target acknowledged it
// AND the offset-map entry recording where it landed is durable on the target: so a committed
// source offset can always be translated exactly.
// Thread: open/write/poll/flush/close from the pipeline's thread; librdkafka's delivery reports
// are served inside poll()/flush() on that same thread.

#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kafka/offset_map.hpp"
#include "kafka/rd.hpp"
#include "kafka/topics.hpp"
#include "mqdr/sink.hpp"
#include "mqdr/stats.hpp"

namespace mqdr::kafka {

struct SinkOptions {
  std::string mirror;
  ClusterConfig cluster;          // the target
  const TopicPolicy* policy = nullptr;  // rename; outlives the sink
  std::string map_topic;          // compacted offset-map topic on the target ("" = no map)
  std::string dead_letter_topic;  // "" = stop on rejected records
  std::map<std::string, std::string> properties;  // producer_properties of the mirror
  WorkerStats* stats = nullptr;
  // Makes sure target `topic` has at least `partitions` partitions; returns the count it has
  // now (throws KafkaError when it cannot).
  std::function<int(const std::string& topic, int partitions)> ensure_partitions;
  // exactly_once: a transactional producer with this id; records, their offset-map entries and
  // the source positions (in `positions_topic`) are committed in one transaction.
  std::string transactional_id;
  std::string positions_topic;
};

class KafkaSink : public Sink {
 public:
  // `map` holds what was persisted so far (loaded by the worker); the sink extends it.
  KafkaSink(SinkOptions options, OffsetMap* map);
  ~KafkaSink() override;

  Status open() override;
  Status write(std::span<const Record> records, std::uint64_t first_id) override;
  Status poll(Duration wait, const std::function<void(std::uint64_t id)>& confirmed) override;
  Status flush(Duration deadline) override;
  void close() override;

  std::uint64_t dead_lettered() const { return dead_lettered_; }

  // exactly_once only. begin_transaction() before the first write of a transaction;
  // commit_transaction() flushes, writes `positions` (source topic, partition -> next offset)
  // and commits. Any failure aborts; the caller restarts from the positions on the target.
  Status begin_transaction();
  Status commit_transaction(const std::map<PartitionKey, std::int64_t>& positions, Duration timeout);
  void abort_transaction(Duration timeout);
  rd_kafka_t* handle() { return rk_.get(); }

 private:
  static void dr_cb(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
  void on_delivery(const rd_kafka_message_t* m);
  Status produce_one(const Record& r, std::uint64_t id);
  Status produce_dead_letter(std::uint64_t id, rd_kafka_resp_err_t err);
  void persist_map();
  rd_kafka_topic_t* topic_handle(const std::string& name);
  int known_partitions(const std::string& topic);

  struct Pending {
    const std::string* topic = nullptr;  // target topic (interned in topics_)
    std::int32_t partition = 0;
    std::int64_t src_offset = -1;
    const std::string* src_topic = nullptr;  // for error messages and dead letters (interned)
    Record record;                       // kept only when a dead-letter topic is configured
  };

  SinkOptions opt_;
  OffsetMap* map_;
  ClientLabel label_;
  Handle rk_;
  std::map<std::string, rd_kafka_topic_t*> topics_;
  std::map<std::string, int> partitions_;  // target partition counts known to exist
  std::set<std::string> names_;            // interned source topic names
  std::set<OffsetMap::Key> dirty_;         // partitions whose map changed since the last write

  std::map<std::uint64_t, Pending> pending_;           // written, not yet acknowledged
  std::vector<std::uint64_t> delivered_;               // acknowledged, map entry not yet written
  std::map<std::uint64_t, std::vector<std::uint64_t>> waiting_;  // map write seq -> ids
  std::map<std::uint64_t, int> waiting_count_;         // map write seq -> records outstanding
  std::vector<std::uint64_t> ready_;                   // confirmed, to hand out in poll()
  std::uint64_t map_seq_ = 0;
  std::uint64_t dead_lettered_ = 0;
  Status failure_;  // first permanent failure seen in a delivery report
  Status txn_status(rd_kafka_error_t* error, const char* what);
};

}  // namespace mqdr::kafka
