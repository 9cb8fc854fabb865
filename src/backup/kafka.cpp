// Kafka backups: records of the selected topics read partition by partition with an assigned
// consumer (no group membership, nothing committed), topic configs and partition counts, and the
// committed offsets of the consumer groups on them. Restores recreate the topics, replay records
// to the same partition numbers with an idempotent producer (order per partition kept), resume
// from the target's end offsets against the base offsets remembered in the restore checkpoint,
// and commit the groups' offsets translated to where their records landed.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "backup/kinds.hpp"
#include "kafka/rd.hpp"
#include "kafka/topics.hpp"

namespace mqdr::backup {

namespace {

using json = nlohmann::json;
using namespace mqdr::kafka;
constexpr int kTimeoutMs = 15000;

std::vector<std::regex> compile(const std::vector<std::string>& patterns) {
  std::vector<std::regex> out;
  for (const auto& p : patterns) out.emplace_back(p);
  return out;
}
bool matches(const std::vector<std::regex>& res, const std::string& s) {
  return std::any_of(res.begin(), res.end(), [&](const std::regex& r) { return std::regex_match(s, r); });
}

// Retries an admin call that fails while a just-created topic's leaders are being elected.
template <class F>
auto retrying(F&& f) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    try {
      return f();
    } catch (const KafkaError& e) {
      if (std::chrono::steady_clock::now() >= until) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  }
}

class KafkaReader : public BackupReader {
 public:
  KafkaReader(const BackupPlanConfig& plan, const ClusterConfig& cluster)
      : plan_(plan), cluster_(cluster), topics_(compile(plan.topics)),
        groups_(compile(plan.groups.empty() ? std::vector<std::string>{".*"} : plan.groups)) {
    label_.label = fmt::format("backup={} cluster={}", plan.name, cluster.name);
    rk_ = make_client(RD_KAFKA_CONSUMER,
                      make_conf(cluster, {{"group.id", "mqdr-backup-" + plan.name},
                                          {"enable.auto.commit", "false"},
                                          {"enable.auto.offset.store", "false"},
                                          {"isolation.level", "read_committed"},
                                          {"enable.partition.eof", "true"},
                                          {"auto.offset.reset", "earliest"}},
                                {}, &label_));
  }

  std::vector<PartitionHead> heads() override {
    const ClusterMeta md = fetch_metadata(rk_.get(), kTimeoutMs);
    std::vector<PartitionHead> out;
    for (const auto& [name, t] : md.topics) {
      if (name.starts_with("__") || !matches(topics_, name)) continue;
      for (int p = 0; p < t.partitions; ++p) {
        const auto [low, high] = retrying([&] { return query_watermarks(rk_.get(), name, p, kTimeoutMs); });
        out.push_back(PartitionHead{name, p, low, high});
        partitions_[name] = t.partitions;
      }
    }
    return out;
  }

  json topology(const std::vector<std::string>& items) override {
    json topics = json::object();
    if (items.empty()) return {{"topics", topics}};
    const auto configs = describe_topic_configs(rk_.get(), items, kTimeoutMs);
    for (const auto& t : items) {
      json cfg = json::object();
      if (auto it = configs.find(t); it != configs.end()) {
        for (const auto& [k, v] : it->second) cfg[k] = v;
      }
      topics[t] = {{"partitions", partitions_[t]}, {"configs", cfg}};
    }
    return {{"topics", topics}};
  }

  json positions(const std::vector<std::string>& items) override {
    const std::set<std::string> wanted(items.begin(), items.end());
    json groups = json::object();
    for (const auto& g : list_groups(rk_.get(), kTimeoutMs)) {
      if (!matches(groups_, g.group) || g.group.starts_with("mqdr-")) continue;
      json offsets = json::array();
      for (const auto& [tp, off] : list_group_offsets(rk_.get(), g.group, kTimeoutMs)) {
        if (wanted.count(tp.first) == 0) continue;
        offsets.push_back({{"topic", tp.first}, {"partition", tp.second}, {"offset", off}});
      }
      if (!offsets.empty()) groups[g.group] = offsets;
    }
    return {{"groups", groups}};
  }

  std::int64_t read(const PartitionHead& h, std::int64_t from,
                    const std::function<bool(Record&)>& out) override {
    if (from >= h.end) return from;
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, h.item.c_str(), h.partition)->offset = from;
    rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error(fmt::format("topic {} partition {}: assign: {}", h.item, h.partition, err_text(err)));
    }
    struct Unassign {
      rd_kafka_t* rk;
      ~Unassign() { rd_kafka_assign(rk, nullptr); }
    } unassign{rk_.get()};
    std::int64_t next = from;
    auto last_progress = std::chrono::steady_clock::now();
    while (next < h.end) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), 200);
      if (m == nullptr) {
        if (std::chrono::steady_clock::now() - last_progress > std::chrono::seconds(60)) {
          throw std::runtime_error(fmt::format("topic {} partition {}: no record for 60 s at offset {} (end {})",
                                               h.item, h.partition, next, h.end));
        }
        continue;
      }
      std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> guard(m, rd_kafka_message_destroy);
      last_progress = std::chrono::steady_clock::now();
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->partition == h.partition && m->rkt != nullptr && h.item == rd_kafka_topic_name(m->rkt)) break;
        continue;
      }
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err == RD_KAFKA_RESP_ERR__TRANSPORT || m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) continue;
        throw std::runtime_error(fmt::format("topic {} partition {}: {}", h.item, h.partition,
                                             rd_kafka_message_errstr(m)));
      }
      // Only the assigned partition counts (a fetch of an earlier assignment may still arrive).
      if (m->partition != h.partition || h.item != rd_kafka_topic_name(m->rkt)) continue;
      if (m->offset >= h.end) break;
      Record r;
      r.item = h.item;
      r.partition = h.partition;
      r.position = m->offset;
      if (m->key != nullptr) r.key.emplace(static_cast<const char*>(m->key), m->key_len);
      if (m->payload != nullptr) r.value.emplace(static_cast<const char*>(m->payload), m->len);
      rd_kafka_timestamp_type_t tt;
      r.timestamp_ms = rd_kafka_message_timestamp(m, &tt);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != nullptr) {
        for (std::size_t i = 0; i < rd_kafka_header_cnt(hdrs); ++i) {
          const char* name = nullptr;
          const void* v = nullptr;
          std::size_t n = 0;
          rd_kafka_header_get_all(hdrs, i, &name, &v, &n);
          Header hd{name, std::nullopt};
          if (v != nullptr) hd.value.emplace(static_cast<const char*>(v), n);
          r.headers.push_back(std::move(hd));
        }
      }
      next = m->offset + 1;
      if (!out(r)) break;
    }
    return next;
  }

 private:
  BackupPlanConfig plan_;
  ClusterConfig cluster_;
  std::vector<std::regex> topics_, groups_;
  ClientLabel label_;
  Handle rk_;
  std::map<std::string, int> partitions_;
};

// Idempotent producer into the target: record i of a partition lands right after record i-1.
class KafkaRestoreSink : public Sink {
 public:
  explicit KafkaRestoreSink(const ClusterConfig& cluster) : cluster_(cluster) {}
  ~KafkaRestoreSink() override { close(); }

  Status open() override {
    try {
      label_.label = fmt::format("restore cluster={}", cluster_.name);
      label_.owner = this;
      auto conf = make_conf(cluster_, {{"acks", "all"}, {"enable.idempotence", "true"},
                                       {"linger.ms", "5"}, {"message.timeout.ms", "300000"}},
                            {}, &label_);
      rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaRestoreSink::dr_cb);
      rk_ = make_client(RD_KAFKA_PRODUCER, std::move(conf));
    } catch (const KafkaError& e) {
      return Status::fatal(e.what());
    }
    return Status::ok();
  }

  Status write(std::span<const Record> records, std::uint64_t first_id) override {
    for (std::size_t i = 0; i < records.size(); ++i) {
      const Record& r = records[i];
      rd_kafka_headers_t* h = rd_kafka_headers_new(r.headers.size());
      for (const auto& hd : r.headers) {
        rd_kafka_header_add(h, hd.key.data(), static_cast<ssize_t>(hd.key.size()),
                            hd.value ? hd.value->data() : nullptr,
                            hd.value ? static_cast<ssize_t>(hd.value->size()) : 0);
      }
      auto* opaque = reinterpret_cast<void*>(static_cast<std::uintptr_t>(first_id + i));
      const void* kp = r.key ? r.key->data() : nullptr;
      const std::size_t kn = r.key ? r.key->size() : 0;
      void* vp = r.value ? const_cast<char*>(r.value->data()) : nullptr;
      const std::size_t vn = r.value ? r.value->size() : 0;
      for (;;) {
        const rd_kafka_resp_err_t err = rd_kafka_producev(
            rk_.get(), RD_KAFKA_V_TOPIC(r.item.c_str()), RD_KAFKA_V_PARTITION(r.partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(kp, kn), RD_KAFKA_V_VALUE(vp, vn),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_TIMESTAMP(r.timestamp_ms), RD_KAFKA_V_OPAQUE(opaque),
            RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          rd_kafka_poll(rk_.get(), 50);
          continue;
        }
        rd_kafka_headers_destroy(h);
        return Status::fatal(fmt::format("topic {} partition {} position {}: {}", r.item, r.partition,
                                         r.position, err_text(err)));
      }
    }
    rd_kafka_poll(rk_.get(), 0);
    return failure_;
  }

  Status poll(Duration wait, const std::function<void(std::uint64_t)>& confirmed) override {
    rd_kafka_poll(rk_.get(), static_cast<int>(wait.count()));
    for (auto id : done_) confirmed(id);
    done_.clear();
    return failure_;
  }

  Status flush(Duration deadline) override {
    rd_kafka_flush(rk_.get(), static_cast<int>(deadline.count()));
    return failure_;
  }

  void close() override {
    if (rk_) {
      rd_kafka_flush(rk_.get(), 10000);
      rk_.reset();
    }
  }

 private:
  static void dr_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* label = static_cast<ClientLabel*>(opaque);
    auto* self = static_cast<KafkaRestoreSink*>(label->owner);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      self->done_.push_back(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(m->_private)));
    } else if (self->failure_.is_ok()) {
      self->failure_ = Status::fatal(fmt::format("topic {} partition {}: {}", rd_kafka_topic_name(m->rkt),
                                                 m->partition, rd_kafka_err2str(m->err)));
    }
  }

  ClusterConfig cluster_;
  ClientLabel label_;
  Handle rk_;
  std::vector<std::uint64_t> done_;
  Status failure_;
};

class KafkaTarget : public RestoreTarget {
 public:
  explicit KafkaTarget(const ClusterConfig& cluster) : cluster_(cluster) {
    label_.label = fmt::format("restore admin cluster={}", cluster.name);
    rk_ = make_client(RD_KAFKA_PRODUCER, make_conf(cluster, {}, {}, &label_));
  }

  void apply_topology(const json& topology, const Renames& renames) override {
    const json topics = topology.value("topics", json::object());
    for (const auto& [name, t] : topics.items()) {
      const std::string target = renamed(renames, name);
      NewTopicSpec spec;
      spec.name = target;
      spec.partitions = t.value("partitions", 1);
      const json configs = t.value("configs", json::object());
      for (const auto& [k, v] : configs.items()) {
        if (replicated_configs().count(k) != 0 && v.is_string()) spec.configs[k] = v.get<std::string>();
      }
      create_topics(rk_.get(), {spec}, kTimeoutMs);
      create_partitions(rk_.get(), target, spec.partitions, kTimeoutMs);
      spdlog::info("restore: topic {} ({} partitions) ready on {}", target, spec.partitions, cluster_.name);
    }
  }

  json prepare(const std::string& item, std::int32_t partition, const json* saved) override {
    if (saved != nullptr && saved->contains("base")) return *saved;
    const auto wm = retrying([&] { return query_watermarks(rk_.get(), item, partition, kTimeoutMs); });
    return {{"base", wm.second}};
  }

  Resume resume(const std::string& item, std::int32_t partition, const json& state) override {
    const auto wm = retrying([&] { return query_watermarks(rk_.get(), item, partition, kTimeoutMs); });
    Resume r;
    r.skip_count = static_cast<std::uint64_t>(std::max<std::int64_t>(0, wm.second - state.value("base", std::int64_t{0})));
    return r;
  }

  SinkPtr make_sink(const std::string&) override { return std::make_unique<KafkaRestoreSink>(cluster_); }

  void apply_positions(const json& positions, const Renames& renames,
                       const RestoredPositions& restored) override {
    std::vector<std::string> problems;
    const json groups = positions.value("groups", json::object());
    for (const auto& [group, offsets] : groups.items()) {
      GroupOffsets out;
      for (const auto& o : offsets) {
        const std::string topic = renamed(renames, o.value("topic", ""));
        const std::int32_t p = o.value("partition", 0);
        const std::int64_t off = o.value("offset", std::int64_t{0});
        const auto key = std::make_pair(topic, p);
        auto st = restored.state.find(key);
        if (st == restored.state.end()) continue;
        const std::int64_t base = st->second.value("base", std::int64_t{0});
        std::int64_t n = 0;
        if (auto ps = restored.positions.find(key); ps != restored.positions.end()) {
          n = std::lower_bound(ps->second.begin(), ps->second.end(), off) - ps->second.begin();
        }
        out[{topic, p}] = base + n;
      }
      if (out.empty()) continue;
      try {
        alter_group_offsets(rk_.get(), group, out, kTimeoutMs);
      } catch (const KafkaError& e) {
        problems.push_back(fmt::format("group {}: {}", group, e.what()));
      }
    }
    if (!problems.empty()) {
      throw std::runtime_error("consumer group offsets not restored: " + problems.front() +
                               (problems.size() > 1 ? fmt::format(" (and {} more)", problems.size() - 1) : ""));
    }
  }

 private:
  ClusterConfig cluster_;
  ClientLabel label_;
  Handle rk_;
};

}  // namespace

std::unique_ptr<BackupReader> make_kafka_reader(const BackupPlanConfig& plan, const ClusterConfig& cluster) {
  try {
    return std::make_unique<KafkaReader>(plan, cluster);
  } catch (const KafkaError& e) {
    throw std::runtime_error(e.what());
  }
}

std::unique_ptr<RestoreTarget> make_kafka_target(const ClusterConfig& cluster) {
  try {
    return std::make_unique<KafkaTarget>(cluster);
  } catch (const KafkaError& e) {
    throw std::runtime_error(e.what());
  }
}

}  // namespace mqdr::backup
