#pragma once
// Thin RAII and synchronous-admin helpers over librdkafka's C API. Everything librdkafka stays in
// src/kafka; these helpers are used by the source, sink, topology/group sync, probe and ops.
// Thread: each helper call runs on its caller's thread and returns within the timeout given.

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "mqdr/config.hpp"

namespace mqdr::kafka {

// A configuration or client problem that will not go away by retrying (bad property, ...).
class KafkaError : public std::runtime_error {
 public:
  KafkaError(std::string message, bool retryable)
      : std::runtime_error(std::move(message)), retryable_(retryable) {}
  bool retryable() const { return retryable_; }

 private:
  bool retryable_;
};

// The `opaque` of every client made here: names the client in librdkafka's log lines and keeps
// the last connection problem librdkafka reported (TLS handshake, certificate check, SASL
// authentication), which errors of the synchronous helpers below carry as their reason: on its
// own, librdkafka only says "Broker transport failure" or "Timed out". The problem is written by
// librdkafka's threads and read by the client's user, under `mu`.
struct ClientLabel {
  ClientLabel() = default;
  explicit ClientLabel(std::string text, void* owner_ = nullptr)
      : label(std::move(text)), owner(owner_) {}

  std::string label;  // e.g. "mirror=orders cluster=kafka-east role=consumer"
  void* owner = nullptr;  // the object that made the client (for its callbacks)
  mutable std::mutex mu;
  std::string problem;      // last failure line of a connection, e.g. a SASL authentication error
  std::string certificate;  // last certificate check that failed, explained
  // Called (on a librdkafka thread) when librdkafka reports every broker of the cluster down.
  std::function<void(const std::string&)> on_all_brokers_down;
};

// "; last connection problem: ..." for the client `rk` (made by make_conf/make_client), or "".
std::string connection_problem(rd_kafka_t* rk);

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const;
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

// A librdkafka configuration for `cluster`: bootstrap servers, TLS, the cluster's properties,
// then `overrides` (later wins). `label` must outlive the client (it becomes its log opaque).
// Throws KafkaError (not retryable) naming the property (never its value) when one is rejected.
ConfPtr make_conf(const ClusterConfig& cluster, const std::map<std::string, std::string>& base,
                  const std::map<std::string, std::string>& overrides, ClientLabel* label);

// Creates a client; takes ownership of `conf`. Throws KafkaError.
Handle make_client(rd_kafka_type_t type, ConfPtr conf);

struct TopicMeta {
  std::string name;
  int partitions = 0;
};

struct ClusterMeta {
  int brokers = 0;
  std::map<std::string, TopicMeta> topics;  // without topics whose metadata carries an error
};

// Metadata of all topics (or only `topic`). Throws KafkaError (retryable) when the cluster does
// not answer in time.
ClusterMeta fetch_metadata(rd_kafka_t* rk, int timeout_ms, const std::string* topic = nullptr);

using TopicConfigs = std::map<std::string, std::string>;

// Dynamic (non-default) configs of each topic. Throws KafkaError.
std::map<std::string, TopicConfigs> describe_topic_configs(rd_kafka_t* rk,
                                                           const std::vector<std::string>& topics,
                                                           int timeout_ms);

struct NewTopicSpec {
  std::string name;
  int partitions = 1;
  TopicConfigs configs;
};

// Creates topics; an already existing topic is not an error. Throws KafkaError naming the topic.
void create_topics(rd_kafka_t* rk, const std::vector<NewTopicSpec>& topics, int timeout_ms);

// Grows `topic` to `partitions`; already that large is not an error. Throws KafkaError.
void create_partitions(rd_kafka_t* rk, const std::string& topic, int partitions, int timeout_ms);

// Replaces the dynamic configs of `topic` by `configs` (non-incremental AlterConfigs).
void alter_topic_configs(rd_kafka_t* rk, const std::string& topic, const TopicConfigs& configs,
                         int timeout_ms);

struct GroupListing {
  std::string group;
  std::string state;  // Stable, Empty, Dead, PreparingRebalance, CompletingRebalance, Unknown
  bool simple = false;
};
std::vector<GroupListing> list_groups(rd_kafka_t* rk, int timeout_ms);

using PartitionKey = std::pair<std::string, std::int32_t>;  // topic, partition
using GroupOffsets = std::map<PartitionKey, std::int64_t>;

// Committed offsets of `group` (partitions without a commit are left out). Throws KafkaError.
GroupOffsets list_group_offsets(rd_kafka_t* rk, const std::string& group, int timeout_ms);

// Commits `offsets` for `group`; fails while the group has active members. Throws KafkaError.
void alter_group_offsets(rd_kafka_t* rk, const std::string& group, const GroupOffsets& offsets,
                         int timeout_ms);

// Low and high watermark of a partition, asked from the broker. Throws KafkaError.
std::pair<std::int64_t, std::int64_t> query_watermarks(rd_kafka_t* rk, const std::string& topic,
                                                       std::int32_t partition, int timeout_ms);

std::string err_text(rd_kafka_resp_err_t err);

// Whether a produce error means the target will never take this record.
bool is_permanent_produce_error(rd_kafka_resp_err_t err);

}  // namespace mqdr::kafka
