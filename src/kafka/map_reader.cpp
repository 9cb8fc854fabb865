#include "kafka/map_reader.hpp"

#include <chrono>

namespace mqdr::kafka {

MapReader::MapReader(const ClusterConfig& target, std::string topic, std::string mirror)
    : target_(target), topic_(std::move(topic)) {
  label_.label = "mirror=" + mirror + " cluster=" + target_.name + " role=offset-map-reader";
  auto conf = make_conf(target_, {{"enable.auto.commit", "false"}, {"group.id", "mqdr-reader"},
                                  {"enable.partition.eof", "false"},
                                  {"isolation.level", "read_committed"},
                                  {"client.id", "mqdr-" + mirror + "-map"}},
                        {}, &label_);
  rk_ = make_client(RD_KAFKA_CONSUMER, std::move(conf));
}

MapReader::~MapReader() {
  if (rk_ && assigned_) rd_kafka_assign(rk_.get(), nullptr);
}

void MapReader::catch_up(int timeout_ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::int64_t lo = 0, hi = 0;
  auto err = rd_kafka_query_watermark_offsets(rk_.get(), topic_.c_str(), 0, &lo, &hi, timeout_ms);
  if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
      err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
    return;  // nothing mirrored yet
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError("offset map " + topic_ + " on " + target_.name + ": " + err_text(err), true);
  }
  if (next_ < lo) next_ = lo;
  if (next_ >= hi) return;
  if (!assigned_) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic_.c_str(), 0)->offset = next_;
    rd_kafka_assign(rk_.get(), list);
    rd_kafka_topic_partition_list_destroy(list);
    assigned_ = true;
  }
  while (next_ < hi) {
    if (std::chrono::steady_clock::now() >= until) {
      throw KafkaError("offset map " + topic_ + " on " + target_.name + ": not read to its end in " +
                           std::to_string(timeout_ms) + " ms",
                       true);
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), 100);
    if (m == nullptr) {
      // The end may be a transaction marker: the fetch position moves past it without a record.
      rd_kafka_topic_partition_list_t* pos = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(pos, topic_.c_str(), 0);
      rd_kafka_position(rk_.get(), pos);
      if (pos->elems[0].offset > next_) next_ = pos->elems[0].offset;
      rd_kafka_topic_partition_list_destroy(pos);
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->key == nullptr) {
      next_ = m->offset + 1;
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::string key(static_cast<const char*>(m->key), m->key_len);
      std::optional<std::string> value;
      if (m->payload != nullptr) value.emplace(static_cast<const char*>(m->payload), m->len);
      map_.apply(key, value);
      next_ = m->offset + 1;
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      auto e = m->err;
      rd_kafka_message_destroy(m);
      if (e == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
        // Compaction removed what we were about to read: the later records still carry the state.
        continue;
      }
      throw KafkaError("offset map " + topic_ + " on " + target_.name + ": " + err_text(e), true);
    }
    rd_kafka_message_destroy(m);
  }
}

std::map<PartitionKey, std::int64_t> read_positions(const ClusterConfig& target,
                                                    const std::string& topic,
                                                    const std::string& mirror, int timeout_ms) {
  std::map<PartitionKey, std::int64_t> out;
  ClientLabel label{"mirror=" + mirror + " cluster=" + target.name + " role=positions-reader"};
  Handle rk = make_client(RD_KAFKA_CONSUMER,
                          make_conf(target, {{"enable.auto.commit", "false"}, {"group.id", "mqdr-reader"},
                                             {"enable.partition.eof", "false"},
                                             {"isolation.level", "read_committed"}},
                                    {}, &label));
  std::int64_t lo = 0, hi = 0;
  auto err = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), 0, &lo, &hi, timeout_ms);
  if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
    return out;
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError("positions " + topic + " on " + target.name + ": " + err_text(err), true);
  }
  if (hi <= lo) return out;
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic.c_str(), 0)->offset = lo;
  rd_kafka_assign(rk.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::int64_t next = lo;
  while (next < hi) {
    if (std::chrono::steady_clock::now() >= until) {
      throw KafkaError("positions " + topic + " on " + target.name + ": not read to its end in time", true);
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100);
    if (m == nullptr) {
      rd_kafka_topic_partition_list_t* pos = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(pos, topic.c_str(), 0);
      rd_kafka_position(rk.get(), pos);
      if (pos->elems[0].offset > next) next = pos->elems[0].offset;
      rd_kafka_topic_partition_list_destroy(pos);
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      next = m->offset + 1;
      if (m->key != nullptr && m->payload != nullptr) {
        std::string key(static_cast<const char*>(m->key), m->key_len);
        std::string value(static_cast<const char*>(m->payload), m->len);
        auto bar = key.rfind('|');
        if (bar != std::string::npos) {
          try {
            out[{key.substr(0, bar), std::stoi(key.substr(bar + 1))}] = std::stoll(value);
          } catch (const std::exception&) {
            // Not ours: ignore.
          }
        }
      }
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_assign(rk.get(), nullptr);
  return out;
}

}  // namespace mqdr::kafka
