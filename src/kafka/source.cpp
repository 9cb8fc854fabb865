#include "kafka/source.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "kafka/topics.hpp"

namespace mqdr::kafka {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void commit_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
               void* opaque) {
  (void)offsets;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
  const auto* label = static_cast<const ClientLabel*>(opaque);
  // A failed commit only means a restart may copy some records again (at least once).
  spdlog::warn("{} offset commit failed: {} ({})", label ? label->label : "kafka",
               rd_kafka_err2str(err), rd_kafka_name(rk));
}

struct ListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using ListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, ListDeleter>;

}  // namespace

KafkaSource::KafkaSource(SourceOptions options) : opt_(std::move(options)) {
  label_.label = "mirror=" + opt_.mirror + " cluster=" + opt_.cluster.name + " role=source";
  label_.owner = this;
  if (opt_.on_source_down) {
    label_.on_all_brokers_down = [this](const std::string& what) {
      if (!source_down_.exchange(true)) opt_.on_source_down(what);
    };
  }
}

void KafkaSource::rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto* self = static_cast<KafkaSource*>(static_cast<ClientLabel*>(opaque)->owner);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    spdlog::info("mirror={} cluster={} assigned {} partitions", self->opt_.mirror,
                 self->opt_.cluster.name, parts->cnt);
    if (self->opt_.on_assign) self->opt_.on_assign(parts);
    rd_kafka_assign(rk, parts);
    return;
  }
  spdlog::info("mirror={} cluster={} revoked {} partitions", self->opt_.mirror,
               self->opt_.cluster.name, parts->cnt);
  // Commit what the target confirmed for the partitions leaving, while still their owner.
  (void)self->commit_now(true);
  for (int i = 0; i < parts->cnt; ++i) {
    PartitionKey key{parts->elems[i].topic, parts->elems[i].partition};
    self->confirmed_next_.erase(key);
    self->committed_next_.erase(key);
    self->committed_known_.erase(key);
    self->unconfirmed_.erase(key);
  }
  rd_kafka_assign(rk, nullptr);
}

KafkaSource::~KafkaSource() { close(); }

Status KafkaSource::open() {
  try {
    std::map<std::string, std::string> base = {
        {"group.id", opt_.group_id},
        {"client.id", "mqdr-" + opt_.mirror},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"isolation.level", "read_committed"},
        {"enable.partition.eof", "false"},
        {"topic.metadata.refresh.interval.ms", std::to_string(opt_.metadata_refresh_ms)},
        {"fetch.wait.max.ms", "100"},
        {"queued.max.messages.kbytes", "65536"},
    };
    auto conf = make_conf(opt_.cluster, base, opt_.properties, &label_);
    rd_kafka_conf_set_offset_commit_cb(conf.get(), commit_cb);
    rd_kafka_conf_set_rebalance_cb(conf.get(), rebalance_cb);
    rk_ = make_client(RD_KAFKA_CONSUMER, std::move(conf));
  } catch (const KafkaError& e) {
    return Status::fatal("mirror " + opt_.mirror + ": source " + opt_.cluster.name + ": " + e.what());
  }
  rd_kafka_poll_set_consumer(rk_.get());
  queue_ = rd_kafka_queue_get_consumer(rk_.get());
  if (!topics_.empty()) return set_topics(std::vector<std::string>(topics_));
  return Status::ok();
}

Status KafkaSource::set_topics(const std::vector<std::string>& topics) {
  topics_ = topics;
  if (!rk_) return Status::ok();
  if (topics.empty()) {
    rd_kafka_unsubscribe(rk_.get());
    return Status::ok();
  }
  ListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const auto& t : topics) rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  auto err = rd_kafka_subscribe(rk_.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::fatal("mirror " + opt_.mirror + ": cannot subscribe on " + opt_.cluster.name +
                         ": " + err_text(err));
  }
  return Status::ok();
}

Status KafkaSource::read(Batch& out, std::size_t max, Duration wait) {
  if (!rk_) return Status::fatal("mirror " + opt_.mirror + ": source not open");
  if (max == 0) return Status::ok();
  std::vector<rd_kafka_message_t*> msgs(std::min<std::size_t>(max, 10000));
  // Only the first record is waited for. A batch call with a timeout returns when the batch is
  // full or the time is up, so at a low rate every record would sit out the whole wait before
  // it is even produced; what is already there follows without waiting.
  ssize_t n = 0;
  std::size_t first = 0;
  if (wait.count() > 0) {
    if (rd_kafka_message_t* m = rd_kafka_consume_queue(queue_, static_cast<int>(wait.count()))) {
      msgs[0] = m;
      first = 1;
    }
  }
  if (wait.count() <= 0 || first > 0) {
    n = rd_kafka_consume_batch_queue(queue_, 0, msgs.data() + first, msgs.size() - first);
    if (n < 0) {
      for (std::size_t i = 0; i < first; ++i) rd_kafka_message_destroy(msgs[i]);
      return Status::retry("mirror " + opt_.mirror + ": consume failed: " +
                           err_text(rd_kafka_last_error()));
    }
  }
  n += static_cast<ssize_t>(first);
  Status result;
  if (n > 0 && source_down_.load()) {
    for (ssize_t i = 0; i < n; ++i) {
      if (msgs[static_cast<std::size_t>(i)]->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        source_down_ = false;
        if (opt_.on_source_back) opt_.on_source_back();
        break;
      }
    }
  }
  for (ssize_t i = 0; i < n; ++i) {
    rd_kafka_message_t* m = msgs[static_cast<std::size_t>(i)];
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        char buf[512];
        if (rd_kafka_fatal_error(rk_.get(), buf, sizeof buf) != RD_KAFKA_RESP_ERR_NO_ERROR) {
          result = Status::fatal("mirror " + opt_.mirror + ": source " + opt_.cluster.name +
                                 ": fatal consumer error: " + buf);
        } else if (m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && result.is_ok()) {
          // Said at once, not after the retries: the worker's state is what tells the failover
          // controller that the mirror from this cluster is broken too.
          result = Status::retry("mirror " + opt_.mirror + ": source " + opt_.cluster.name +
                                 ": all brokers are down" + connection_problem(rk_.get()));
        } else if (now_ms() - last_error_log_ > 10000) {
          last_error_log_ = now_ms();
          spdlog::warn("mirror={} cluster={} consumer: {}{}", opt_.mirror, opt_.cluster.name,
                       m->rkt ? std::string(rd_kafka_topic_name(m->rkt)) + ": " : std::string(),
                       rd_kafka_message_errstr(m));
        }
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    Record r;
    r.item = rd_kafka_topic_name(m->rkt);
    r.partition = m->partition;
    r.position = m->offset;
    if (m->key != nullptr) r.key.emplace(static_cast<const char*>(m->key), m->key_len);
    if (m->payload != nullptr) r.value.emplace(static_cast<const char*>(m->payload), m->len);
    rd_kafka_timestamp_type_t tstype;
    r.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
    rd_kafka_headers_t* hdrs = nullptr;
    bool skip = false;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != nullptr) {
      std::size_t cnt = rd_kafka_header_cnt(hdrs);
      r.headers.reserve(cnt);
      for (std::size_t h = 0; h < cnt; ++h) {
        const char* name = nullptr;
        const void* val = nullptr;
        std::size_t size = 0;
        if (rd_kafka_header_get_all(hdrs, h, &name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) break;
        Header hd;
        hd.key = name;
        if (val != nullptr) hd.value.emplace(static_cast<const char*>(val), size);
        if (!opt_.skip_origin.empty() && hd.key == kOriginHeader && hd.value == opt_.skip_origin) {
          skip = true;
        }
        r.headers.push_back(std::move(hd));
      }
    }
    rd_kafka_message_destroy(m);
    if (skip) {
      // Written on the target first and copied here by the reverse mirror: copying it back
      // would loop. Not committed by itself; the next copied record's commit covers it.
      ++skipped_;
      continue;
    }
    ++unconfirmed_[{r.item, r.partition}];
    out.push_back(std::move(r));
  }
  return result;
}

Status KafkaSource::commit(std::span<const Record> confirmed) {
  const std::int64_t now = now_ms();
  for (const auto& r : confirmed) {
    PartitionKey key{r.item, r.partition};
    auto& next = confirmed_next_[key];
    next = std::max(next, r.position + 1);
    last_ts_[key] = r.timestamp_ms;
    if (auto u = unconfirmed_.find(key); u != unconfirmed_.end() && u->second > 0) --u->second;
    if (r.item == kHeartbeatTopic && r.timestamp_ms > 0) {
      heartbeat_ms_.store(static_cast<double>(now - r.timestamp_ms));
    }
  }
  return commit_now(false);
}

Status KafkaSource::commit_now(bool sync) {
  if (!rk_) return Status::ok();
  ListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(confirmed_next_.size())));
  for (const auto& [key, next] : confirmed_next_) {
    auto it = committed_next_.find(key);
    if (!sync && it != committed_next_.end() && it->second == next) continue;
    rd_kafka_topic_partition_list_add(list.get(), key.first.c_str(), key.second)->offset = next;
  }
  if (list->cnt == 0) return Status::ok();
  auto err = rd_kafka_commit(rk_.get(), list.get(), sync ? 0 : 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    spdlog::warn("mirror={} cluster={} commit failed: {}", opt_.mirror, opt_.cluster.name,
                 err_text(err));
    return Status::ok();  // records are on the target; a failed commit means a re-copy only
  }
  for (int i = 0; i < list->cnt; ++i) {
    committed_next_[{list->elems[i].topic, list->elems[i].partition}] = list->elems[i].offset;
  }
  return Status::ok();
}

void KafkaSource::advance_idle_partitions() {
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  ListPtr assigned(raw);
  rd_kafka_position(rk_.get(), assigned.get());
  bool moved = false;
  for (int i = 0; i < assigned->cnt; ++i) {
    const auto& p = assigned->elems[i];
    if (p.offset < 0) continue;
    PartitionKey key{p.topic, p.partition};
    auto u = unconfirmed_.find(key);
    if (u != unconfirmed_.end() && u->second > 0) continue;
    auto& next = confirmed_next_[key];
    if (p.offset > next) {
      next = p.offset;
      moved = true;
    }
  }
  if (moved) (void)commit_now(false);
}

void KafkaSource::learn_committed_positions() {
  // rd_kafka_position() is only known once this consumer returned a record of the partition: a
  // partition with nothing new since its committed offset (a mirror restarted on a quiet topic)
  // would otherwise count as lagging by everything it holds. Its committed offset is what was
  // confirmed by the target, so it is where the mirror stands.
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  ListPtr assigned(raw);
  rd_kafka_position(rk_.get(), assigned.get());
  ListPtr unknown(rd_kafka_topic_partition_list_new(0));
  for (int i = 0; i < assigned->cnt; ++i) {
    const auto& p = assigned->elems[i];
    PartitionKey key{p.topic, p.partition};
    if (p.offset >= 0 || confirmed_next_.count(key) != 0 || committed_known_.count(key) != 0) continue;
    rd_kafka_topic_partition_list_add(unknown.get(), p.topic, p.partition);
  }
  if (unknown->cnt == 0) return;
  if (rd_kafka_committed(rk_.get(), unknown.get(), 2000) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  for (int i = 0; i < unknown->cnt; ++i) {
    const auto& p = unknown->elems[i];
    if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    PartitionKey key{p.topic, p.partition};
    committed_known_.insert(key);
    if (p.offset >= 0 && confirmed_next_.count(key) == 0) {
      confirmed_next_[key] = p.offset;
      committed_next_[key] = p.offset;
    }
  }
}

Lag KafkaSource::lag() {
  Lag lag;
  if (!rk_) return lag;
  learn_committed_positions();
  advance_idle_partitions();
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return lag;
  ListPtr assigned(raw);
  rd_kafka_position(rk_.get(), assigned.get());
  std::int64_t total = 0;
  double age = 0;
  const std::int64_t now = now_ms();
  for (int i = 0; i < assigned->cnt; ++i) {
    const auto& p = assigned->elems[i];
    // mqdr's own heartbeats are not the user's data: a backlog of them (a mirror starting
    // afresh) must not count as replication lag, e.g. against a failover group's max_lag.
    if (p.topic == kHeartbeatTopic) continue;
    std::int64_t lo = 0, hi = 0;
    if (rd_kafka_get_watermark_offsets(rk_.get(), p.topic, p.partition, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi < 0) {
      continue;
    }
    PartitionKey key{p.topic, p.partition};
    auto it = confirmed_next_.find(key);
    std::int64_t done = it != confirmed_next_.end() ? it->second : (p.offset >= 0 ? p.offset : lo);
    std::int64_t l = std::max<std::int64_t>(0, hi - std::max(done, lo));
    total += l;
    if (l > 0) {
      auto ts = last_ts_.find(key);
      if (ts != last_ts_.end() && ts->second > 0) {
        age = std::max(age, static_cast<double>(now - ts->second) / 1000.0);
      }
    }
  }
  lag.records = total;
  lag.seconds = total == 0 ? 0.0 : age;
  return lag;
}

nlohmann::json KafkaSource::partition_detail() {
  nlohmann::json parts = nlohmann::json::array();
  if (!rk_) return parts;
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return parts;
  ListPtr assigned(raw);
  for (int i = 0; i < assigned->cnt; ++i) {
    const auto& p = assigned->elems[i];
    std::int64_t lo = 0, hi = -1;
    rd_kafka_get_watermark_offsets(rk_.get(), p.topic, p.partition, &lo, &hi);
    auto it = confirmed_next_.find({p.topic, p.partition});
    std::int64_t done = it != confirmed_next_.end() ? it->second : -1;
    nlohmann::json j = {{"topic", p.topic}, {"partition", p.partition}};
    j["high_watermark"] = hi;
    j["mirrored_next"] = done;
    j["lag_records"] = (hi >= 0 && done >= 0) ? std::max<std::int64_t>(0, hi - done)
                                              : (hi >= 0 ? hi - lo : -1);
    parts.push_back(std::move(j));
  }
  return parts;
}

void KafkaSource::close() {
  if (!rk_) return;
  // The final commit is synchronous: what the target confirmed is not copied again on restart.
  (void)commit_now(true);
  if (queue_ != nullptr) {
    rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
  }
  rd_kafka_consumer_close(rk_.get());
  rk_.reset();
}

}  // namespace mqdr::kafka
