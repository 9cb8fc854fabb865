#pragma once
// Helpers for the Kafka mirror integration tests: endpoints of the harness clusters, topic
// admin, producing and reading records with librdkafka, running a mirror worker on a thread.
// Every wait is bounded.

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kafka/rd.hpp"
#include "kafka/topics.hpp"
#include "mqdr/broker.hpp"
#include "mqdr/kafka.hpp"
#include "mqdr/record.hpp"
#include "mqdr/stats.hpp"

namespace mqdr::kafka::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}
inline std::string bootstrap_a() { return env_or("MQDR_KAFKA_A", "127.0.0.1:19092"); }
inline std::string bootstrap_b() { return env_or("MQDR_KAFKA_B", "127.0.0.1:29092"); }

inline std::string unique(const std::string& prefix) {
  static std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08llx", static_cast<unsigned long long>(rng() & 0xffffffffULL));
  return prefix + "-" + buf;
}

inline ClusterConfig cluster(const std::string& name, const std::string& bootstrap) {
  ClusterConfig c;
  c.name = name;
  c.kind = ClusterKind::kafka;
  c.kafka.bootstrap_servers = bootstrap;
  return c;
}

// Waits until `pred` holds or `timeout` passes; returns the last value of pred.
inline bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds step = 200ms) {
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(step);
  }
  return pred();
}

// An admin client on one cluster.
class Admin {
 public:
  explicit Admin(const ClusterConfig& c) : cluster_(c) {
    label_.label = "test admin " + c.name;
    rk_ = make_client(RD_KAFKA_PRODUCER, make_conf(c, {}, {}, &label_));
  }
  void create(const std::string& topic, int partitions, TopicConfigs configs = {}) {
    create_topics(rk_.get(), {NewTopicSpec{topic, partitions, std::move(configs)}}, 15000);
  }
  int partitions(const std::string& topic) {
    try {
      auto md = fetch_metadata(rk_.get(), 5000, &topic);
      auto it = md.topics.find(topic);
      return it == md.topics.end() ? 0 : it->second.partitions;
    } catch (const KafkaError&) {
      return 0;
    }
  }
  TopicConfigs configs(const std::string& topic) {
    return describe_topic_configs(rk_.get(), {topic}, 10000)[topic];
  }
  std::int64_t end_offset(const std::string& topic, int partition) {
    return query_watermarks(rk_.get(), topic, partition, 10000).second;
  }
  // Same, 0 while not readable yet.
  std::int64_t end_or_zero(const std::string& topic, int partition) {
    try {
      return end_offset(topic, partition);
    } catch (const KafkaError&) {
      return 0;
    }
  }
  // Sum of the end offsets of all partitions; 0 while the topic is not fully readable yet
  // (just created: leaders still being elected).
  std::int64_t total_end(const std::string& topic) {
    std::int64_t n = 0;
    try {
      for (int p = 0, np = partitions(topic); p < np; ++p) n += end_offset(topic, p);
    } catch (const KafkaError&) {
      return 0;
    }
    return n;
  }
  rd_kafka_t* rk() { return rk_.get(); }

 private:
  ClusterConfig cluster_;
  ClientLabel label_;
  Handle rk_;
};

// A record for `topic`/`partition` (nullopt key/value = null).
inline Record rec(const std::string& topic, int partition, std::optional<std::string> key,
                  std::optional<std::string> value) {
  Record r;
  r.item = topic;
  r.partition = partition;
  r.key = std::move(key);
  r.value = std::move(value);
  return r;
}

// Produces records to their `item`/`partition` and waits for every acknowledgement.
inline void produce(const std::string& bootstrap, const std::vector<Record>& records,
                    const std::map<std::string, std::string>& extra = {}) {
  ClientLabel label{"test producer"};
  auto conf = make_conf(cluster("p", bootstrap), {{"acks", "all"}, {"linger.ms", "5"}}, extra, &label);
  Handle rk = make_client(RD_KAFKA_PRODUCER, std::move(conf));
  for (const auto& r : records) {
    rd_kafka_headers_t* h = rd_kafka_headers_new(r.headers.size());
    for (const auto& hd : r.headers) {
      rd_kafka_header_add(h, hd.key.data(), static_cast<ssize_t>(hd.key.size()),
                          hd.value ? hd.value->data() : nullptr,
                          hd.value ? static_cast<ssize_t>(hd.value->size()) : 0);
    }
    const void* kp = r.key ? r.key->data() : nullptr;
    const std::size_t kn = r.key ? r.key->size() : 0;
    void* vp = r.value ? const_cast<char*>(r.value->data()) : nullptr;
    const std::size_t vn = r.value ? r.value->size() : 0;
    rd_kafka_resp_err_t err;
    do {
      err = rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(r.item.c_str()),
                              RD_KAFKA_V_PARTITION(r.partition),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(kp, kn),
                              RD_KAFKA_V_VALUE(vp, vn), RD_KAFKA_V_HEADERS(h),
                              RD_KAFKA_V_TIMESTAMP(r.timestamp_ms), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(rk.get(), 50);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_headers_destroy(h);
      throw std::runtime_error("produce: " + err_text(err));
    }
    rd_kafka_poll(rk.get(), 0);
  }
  if (rd_kafka_flush(rk.get(), 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("produce: flush timed out");
  }
}

inline Record to_record(const rd_kafka_message_t* m) {
  Record r;
  r.item = rd_kafka_topic_name(m->rkt);
  r.partition = m->partition;
  r.position = m->offset;
  if (m->key != nullptr) r.key.emplace(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) r.value.emplace(static_cast<const char*>(m->payload), m->len);
  rd_kafka_timestamp_type_t tt;
  r.timestamp_ms = rd_kafka_message_timestamp(m, &tt);
  rd_kafka_headers_t* h = nullptr;
  if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h != nullptr) {
    for (std::size_t i = 0; i < rd_kafka_header_cnt(h); ++i) {
      const char* name = nullptr;
      const void* v = nullptr;
      std::size_t n = 0;
      rd_kafka_header_get_all(h, i, &name, &v, &n);
      Header hd{name, std::nullopt};
      if (v != nullptr) hd.value.emplace(static_cast<const char*>(v), n);
      r.headers.push_back(std::move(hd));
    }
  }
  return r;
}

// Reads every partition of `topic` from the beginning up to its current end (read_committed).
inline std::vector<Record> read_all(const std::string& bootstrap, const std::string& topic,
                                    std::chrono::milliseconds timeout = 60s) {
  ClusterConfig c = cluster("r", bootstrap);
  Admin admin(c);
  const int parts = admin.partitions(topic);
  std::map<int, std::int64_t> ends;
  for (int p = 0; p < parts; ++p) ends[p] = admin.end_offset(topic, p);
  ClientLabel label{"test reader"};
  Handle rk = make_client(RD_KAFKA_CONSUMER,
                          make_conf(c, {{"enable.auto.commit", "false"}, {"group.id", "mqdr-test-reader"}, {"isolation.level", "read_committed"},
                                        {"enable.partition.eof", "true"}},
                                    {}, &label));
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(parts);
  for (int p = 0; p < parts; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<Record> out;
  std::map<int, bool> done;
  for (int p = 0; p < parts; ++p) done[p] = ends[p] == 0;
  auto all_done = [&] {
    for (auto& [p, d] : done) if (!d) return false;
    return true;
  };
  const auto until = Clock::now() + timeout;
  while (!all_done() && Clock::now() < until) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->offset >= ends[m->partition]) done[m->partition] = true;
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      out.push_back(to_record(m));
      if (m->offset + 1 >= ends[m->partition]) done[m->partition] = true;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_assign(rk.get(), nullptr);
  rd_kafka_consumer_close(rk.get());
  if (!all_done()) throw std::runtime_error("read_all " + topic + ": end not reached in time");
  return out;
}

// Without our origin header (asserting it names `origin`).
inline Record strip_origin(Record r, const std::string& origin) {
  std::erase_if(r.headers, [&](const Header& h) {
    if (h.key != kOriginHeader) return false;
    EXPECT_EQ(h.value, origin);
    return true;
  });
  return r;
}

// A mirror worker running on its own thread; stopped (and joined) on destruction.
class RunningMirror {
 public:
  explicit RunningMirror(MirrorContext ctx) : ctx_(std::move(ctx)) {
    mqdr::kafka::register_kind(registry_);
    worker_ = registry_.find(ClusterKind::kafka)->make_mirror(ctx_);
    thread_ = std::jthread([this](std::stop_token st) {
      result_ = worker_->run(st);
      finished_ = true;
    });
  }
  ~RunningMirror() { stop(); }
  Status stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
    return result_;
  }
  bool finished() const { return finished_; }
  const Status& result() const { return result_; }
  WorkerStats& stats() { return *ctx_.stats; }

 private:
  MirrorContext ctx_;
  BrokerRegistry registry_;
  WorkerPtr worker_;
  Status result_;
  std::atomic<bool> finished_{false};
  std::jthread thread_;
};

inline MirrorContext mirror_context(const std::string& name, std::vector<std::string> topics,
                                    std::string rename = "{topic}") {
  MirrorContext ctx;
  ctx.source = cluster("kafka-a", bootstrap_a());
  ctx.target = cluster("kafka-b", bootstrap_b());
  ctx.mirror.name = name;
  ctx.mirror.source = ctx.source.name;
  ctx.mirror.target = ctx.target.name;
  ctx.mirror.kind = ClusterKind::kafka;
  ctx.mirror.kafka.topics = std::move(topics);
  ctx.mirror.kafka.rename = std::move(rename);
  ctx.mirror.kafka.refresh_interval = 2s;
  ctx.mirror.kafka.group_sync_interval = 1s;
  ctx.mirror.kafka.heartbeat_interval = 1s;
  ctx.stats = std::make_shared<WorkerStats>(name, "kafka");
  return ctx;
}

}  // namespace mqdr::kafka::test
