#include "kafka/sink.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

namespace mqdr::kafka {

namespace {
constexpr std::uint64_t kMapFlag = 1ull << 63;
constexpr std::uint64_t kDeadLetterFlag = 1ull << 62;
using Clock = std::chrono::steady_clock;

std::string hint(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
      return " (raise max.message.bytes of the target topic, or set dead_letter_topic)";
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      return " (grant the mirror's user Write on the target topic)";
    default:
      return " (set dead_letter_topic to divert such records)";
  }
}
}  // namespace

KafkaSink::KafkaSink(SinkOptions options, OffsetMap* map) : opt_(std::move(options)), map_(map) {
  label_.label = "mirror=" + opt_.mirror + " cluster=" + opt_.cluster.name + " role=target";
  label_.owner = this;
}

KafkaSink::~KafkaSink() { close(); }

void KafkaSink::dr_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<KafkaSink*>(static_cast<ClientLabel*>(opaque)->owner);
  self->on_delivery(m);
}

Status KafkaSink::open() {
  try {
    std::map<std::string, std::string> base = {
        {"client.id", "mqdr-" + opt_.mirror},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "5"},
        {"batch.num.messages", "10000"},
        {"message.max.bytes", "16777216"},
        {"queue.buffering.max.kbytes", "262144"},
    };
    auto conf = make_conf(opt_.cluster, base, opt_.properties, &label_);
    if (!opt_.transactional_id.empty()) {
      char errstr[256];
      if (rd_kafka_conf_set(conf.get(), "transactional.id", opt_.transactional_id.c_str(), errstr,
                            sizeof errstr) != RD_KAFKA_CONF_OK) {
        throw KafkaError(std::string("transactional.id: ") + errstr, false);
      }
    }
    rd_kafka_conf_set_dr_msg_cb(conf.get(), dr_cb);
    rk_ = make_client(RD_KAFKA_PRODUCER, std::move(conf));
  } catch (const KafkaError& e) {
    return Status::fatal("mirror " + opt_.mirror + ": target " + opt_.cluster.name + ": " + e.what());
  }
  if (!opt_.transactional_id.empty()) {
    // Fences an older instance with the same id and aborts what it left open (a kill -9).
    Status st = txn_status(rd_kafka_init_transactions(rk_.get(), 60000), "init transactions");
    if (!st.is_ok()) return st;
  }
  return Status::ok();
}

Status KafkaSink::txn_status(rd_kafka_error_t* error, const char* what) {
  if (error == nullptr) return Status::ok();
  std::string msg = "mirror " + opt_.mirror + ": target " + opt_.cluster.name + ": " + what + ": " +
                    rd_kafka_error_string(error);
  const bool fatal = rd_kafka_error_is_fatal(error) != 0;
  const bool fenced = rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__FENCED ||
                      rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR_PRODUCER_FENCED;
  rd_kafka_error_destroy(error);
  if (fenced) {
    return Status::retry(msg + " (another mqdr instance took over transactional.id " +
                         opt_.transactional_id + ")");
  }
  // Fatal producer errors need a new producer: the worker restart makes one.
  (void)fatal;
  return Status::retry(msg);
}

Status KafkaSink::begin_transaction() {
  return txn_status(rd_kafka_begin_transaction(rk_.get()), "begin transaction");
}

Status KafkaSink::commit_transaction(const std::map<PartitionKey, std::int64_t>& positions,
                                     Duration timeout) {
  Status st = flush(timeout);
  if (!st.is_ok()) {
    abort_transaction(timeout);
    return st;
  }
  rd_kafka_topic_t* rkt = topic_handle(opt_.positions_topic);
  for (const auto& [tp, next] : positions) {
    const std::string k = tp.first + "|" + std::to_string(tp.second);
    const std::string v = std::to_string(next);
    rd_kafka_resp_err_t err;
    do {
      err = rd_kafka_producev(rk_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(k.data(), k.size()),
                              RD_KAFKA_V_VALUE(const_cast<char*>(v.data()), v.size()),
                              RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(kMapFlag | 0)), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(rk_.get(), 10);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      abort_transaction(timeout);
      return Status::retry("mirror " + opt_.mirror + ": cannot write positions: " + err_text(err));
    }
  }
  // commit_transaction flushes the position records itself.
  st = txn_status(rd_kafka_commit_transaction(rk_.get(), static_cast<int>(timeout.count())),
                  "commit transaction");
  if (!st.is_ok()) {
    abort_transaction(timeout);
    return st;
  }
  rd_kafka_poll(rk_.get(), 0);
  return failure_;
}

void KafkaSink::abort_transaction(Duration timeout) {
  rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_.get(), static_cast<int>(timeout.count()));
  if (e != nullptr) {
    spdlog::warn("mirror={} abort transaction: {}", opt_.mirror, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
  }
}

rd_kafka_topic_t* KafkaSink::topic_handle(const std::string& name) {
  auto it = topics_.find(name);
  if (it != topics_.end()) return it->second;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), name.c_str(), nullptr);
  topics_.emplace(name, rkt);
  return rkt;
}

int KafkaSink::known_partitions(const std::string& topic) {
  auto it = partitions_.find(topic);
  if (it != partitions_.end()) return it->second;
  int n = 0;
  try {
    auto md = fetch_metadata(rk_.get(), 10000, &topic);
    auto t = md.topics.find(topic);
    if (t != md.topics.end()) n = t->second.partitions;
  } catch (const KafkaError&) {
    return 0;  // unknown for now; asked again on the next record
  }
  if (n > 0) partitions_[topic] = n;
  return n;
}

Status KafkaSink::produce_one(const Record& r, std::uint64_t id) {
  const std::string target = opt_.policy->target_topic(r.item);
  if (r.partition >= known_partitions(target)) {
    try {
      int n = opt_.ensure_partitions ? opt_.ensure_partitions(target, r.partition + 1) : 0;
      if (n > r.partition) {
        partitions_[target] = n;
        // Let the producer see the new partitions before producing to them.
        (void)fetch_metadata(rk_.get(), 10000, &target);
      }
    } catch (const KafkaError& e) {
      return e.retryable() ? Status::retry("mirror " + opt_.mirror + ": " + e.what())
                           : Status::fatal("mirror " + opt_.mirror + ": " + e.what());
    }
  }
  rd_kafka_topic_t* rkt = topic_handle(target);

  const auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(r.headers.size() + 1);
    bool has_origin = false;
    for (const auto& h : r.headers) {
      if (h.key == kOriginHeader) has_origin = true;
      rd_kafka_header_add(hdrs, h.key.data(), static_cast<ssize_t>(h.key.size()),
                          h.value ? h.value->data() : nullptr,
                          h.value ? static_cast<ssize_t>(h.value->size()) : 0);
    }
    if (!has_origin) {
      const std::string& origin = opt_.policy->source_cluster();
      rd_kafka_header_add(hdrs, kOriginHeader.data(), static_cast<ssize_t>(kOriginHeader.size()),
                          origin.data(), static_cast<ssize_t>(origin.size()));
    }
    const void* kp = r.key ? r.key->data() : nullptr;
    const std::size_t kn = r.key ? r.key->size() : 0;
    void* vp = r.value ? const_cast<char*>(r.value->data()) : nullptr;
    const std::size_t vn = r.value ? r.value->size() : 0;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(r.partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(kp, kn), RD_KAFKA_V_VALUE(vp, vn),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_TIMESTAMP(r.timestamp_ms > 0 ? r.timestamp_ms : 0),
        RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(id)), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::ok();
    rd_kafka_headers_destroy(hdrs);  // not taken over on failure
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // Backpressure from the local queue: serve delivery reports, then the same record again.
      rd_kafka_poll(rk_.get(), 10);
      continue;
    }
    if ((err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION || err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) &&
        Clock::now() < deadline) {
      try {
        (void)fetch_metadata(rk_.get(), 5000, &target);
      } catch (const KafkaError&) {
      }
      rd_kafka_poll(rk_.get(), 100);
      continue;
    }
    const std::string what = "record " + r.item + "[" + std::to_string(r.partition) + "]@" +
                             std::to_string(r.position) + " rejected by target " +
                             opt_.cluster.name + " topic " + target + ": " + err_text(err);
    if (is_permanent_produce_error(err)) {
      if (!opt_.dead_letter_topic.empty()) {
        pending_[id].record = r;
        return produce_dead_letter(id, err);
      }
      return Status::fatal("mirror " + opt_.mirror + ": " + what + hint(err));
    }
    return Status::retry("mirror " + opt_.mirror + ": " + what);
  }
}

Status KafkaSink::write(std::span<const Record> records, std::uint64_t first_id) {
  if (!rk_) return Status::fatal("mirror " + opt_.mirror + ": sink not open");
  if (!failure_.is_ok()) return failure_;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    const std::uint64_t id = first_id + i;
    Pending& p = pending_[id];
    p.topic = &*names_.insert(opt_.policy->target_topic(r.item)).first;
    p.src_topic = &*names_.insert(r.item).first;
    p.partition = r.partition;
    p.src_offset = r.position;
    if (!opt_.dead_letter_topic.empty()) p.record = r;
    Status st = produce_one(r, id);
    if (!st.is_ok()) return st;
  }
  return Status::ok();
}

Status KafkaSink::produce_dead_letter(std::uint64_t id, rd_kafka_resp_err_t err) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return Status::ok();
  const Pending& p = it->second;
  const Record& r = p.record;
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(r.headers.size() + 4);
  for (const auto& h : r.headers) {
    rd_kafka_header_add(hdrs, h.key.data(), static_cast<ssize_t>(h.key.size()),
                        h.value ? h.value->data() : nullptr,
                        h.value ? static_cast<ssize_t>(h.value->size()) : 0);
  }
  const std::string offset = std::to_string(p.src_offset);
  const std::string partition = std::to_string(p.partition);
  const std::string error = err_text(err);
  rd_kafka_header_add(hdrs, "mqdr-dlq-topic", -1, p.src_topic->data(), static_cast<ssize_t>(p.src_topic->size()));
  rd_kafka_header_add(hdrs, "mqdr-dlq-partition", -1, partition.data(), static_cast<ssize_t>(partition.size()));
  rd_kafka_header_add(hdrs, "mqdr-dlq-offset", -1, offset.data(), static_cast<ssize_t>(offset.size()));
  rd_kafka_header_add(hdrs, "mqdr-dlq-error", -1, error.data(), static_cast<ssize_t>(error.size()));
  const void* kp = r.key ? r.key->data() : nullptr;
  const std::size_t kn = r.key ? r.key->size() : 0;
  void* vp = r.value ? const_cast<char*>(r.value->data()) : nullptr;
  const std::size_t vn = r.value ? r.value->size() : 0;
  rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__QUEUE_FULL;
  while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    e = rd_kafka_producev(rk_.get(), RD_KAFKA_V_RKT(topic_handle(opt_.dead_letter_topic)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY(kp, kn), RD_KAFKA_V_VALUE(vp, vn),
                          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_TIMESTAMP(r.timestamp_ms > 0 ? r.timestamp_ms : 0),
                          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(id | kDeadLetterFlag)),
                          RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(rk_.get(), 10);
  }
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(hdrs);
    return Status::fatal("mirror " + opt_.mirror + ": record " + *p.src_topic + "[" + partition +
                         "]@" + offset + " rejected (" + error + ") and dead-letter topic " +
                         opt_.dead_letter_topic + " refused it too: " + err_text(e));
  }
  spdlog::warn("mirror={} record {}[{}]@{} rejected by target {} ({}): sent to dead-letter topic {}",
               opt_.mirror, *p.src_topic, partition, offset, opt_.cluster.name, error,
               opt_.dead_letter_topic);
  if (opt_.stats != nullptr) opt_.stats->add_error();
  return Status::ok();
}

void KafkaSink::on_delivery(const rd_kafka_message_t* m) {
  const auto tag = reinterpret_cast<std::uintptr_t>(m->_private);
  const std::uint64_t id = static_cast<std::uint64_t>(tag);
  if ((id & kMapFlag) != 0) {
    const std::uint64_t seq = id & ~kMapFlag;
    if (seq == 0) return;  // a position record (exactly_once): the transaction commit checks it
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (failure_.is_ok()) {
        failure_ = Status::retry("mirror " + opt_.mirror + ": cannot write offset map topic " +
                                 opt_.map_topic + " on " + opt_.cluster.name + ": " +
                                 err_text(m->err));
      }
      return;
    }
    if (--waiting_count_[seq] == 0) {
      auto& ids = waiting_[seq];
      ready_.insert(ready_.end(), ids.begin(), ids.end());
      waiting_.erase(seq);
      waiting_count_.erase(seq);
    }
    return;
  }
  if ((id & kDeadLetterFlag) != 0) {
    const std::uint64_t real = id & ~kDeadLetterFlag;
    auto it = pending_.find(real);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (failure_.is_ok()) {
        failure_ = Status::fatal("mirror " + opt_.mirror + ": dead-letter topic " +
                                 opt_.dead_letter_topic + " refused a record: " + err_text(m->err));
      }
      return;
    }
    if (it != pending_.end()) pending_.erase(it);
    ++dead_lettered_;
    ready_.push_back(real);
    return;
  }
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (map_ != nullptr && !opt_.map_topic.empty()) {
      map_->partition(*p.topic, p.partition).add(p.src_offset, m->offset);
      dirty_.insert({*p.topic, p.partition});
      delivered_.push_back(id);
    } else {
      ready_.push_back(id);
    }
    pending_.erase(it);
    return;
  }
  const std::string what = "record " + *p.src_topic + "[" + std::to_string(p.partition) + "]@" +
                           std::to_string(p.src_offset) + " rejected by target " +
                           opt_.cluster.name + " topic " + *p.topic + ": " + err_text(m->err);
  if (is_permanent_produce_error(m->err)) {
    if (!opt_.dead_letter_topic.empty()) {
      Status st = produce_dead_letter(id, m->err);
      if (!st.is_ok() && failure_.is_ok()) failure_ = st;
      return;
    }
    if (failure_.is_ok()) failure_ = Status::fatal("mirror " + opt_.mirror + ": " + what + hint(m->err));
    return;
  }
  // librdkafka already retried within message.timeout.ms: the target is unavailable.
  if (failure_.is_ok()) {
    failure_ = Status::retry("mirror " + opt_.mirror + ": " + what + " (not acknowledged in time)");
  }
}

void KafkaSink::persist_map() {
  if (delivered_.empty()) return;
  const std::uint64_t seq = ++map_seq_;
  int count = 0;
  rd_kafka_topic_t* rkt = topic_handle(opt_.map_topic);
  for (const auto& key : dirty_) {
    auto changes = map_->partition(key.first, key.second).take_changes();
    for (const auto& [src, run] : changes) {
      const std::string k = OffsetMap::encode_key(key.first, key.second, src);
      const std::string v = run ? OffsetMap::encode_value(*run) : std::string();
      void* vp = run ? const_cast<char*>(v.data()) : nullptr;
      const std::size_t vn = run ? v.size() : 0;
      rd_kafka_resp_err_t err;
      do {
        err = rd_kafka_producev(
            rk_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(0),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(k.data(), k.size()),
            RD_KAFKA_V_VALUE(vp, vn),
            RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(seq | kMapFlag)), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(rk_.get(), 10);
      } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (failure_.is_ok()) {
          failure_ = Status::retry("mirror " + opt_.mirror + ": cannot write offset map topic " +
                                   opt_.map_topic + ": " + err_text(err));
        }
        continue;
      }
      ++count;
    }
  }
  dirty_.clear();
  if (count == 0) {
    ready_.insert(ready_.end(), delivered_.begin(), delivered_.end());
  } else {
    waiting_[seq] = std::move(delivered_);
    waiting_count_[seq] = count;
  }
  delivered_.clear();
}

Status KafkaSink::poll(Duration wait, const std::function<void(std::uint64_t id)>& confirmed) {
  if (!rk_) return Status::fatal("mirror " + opt_.mirror + ": sink not open");
  // Even when asked not to wait, give the network a millisecond while records are in flight, so
  // a caller polling in a loop does not spin a core.
  const int ms = ready_.empty() ? std::max<int>(1, static_cast<int>(wait.count())) : 0;
  rd_kafka_poll(rk_.get(), ms);
  persist_map();
  rd_kafka_poll(rk_.get(), 0);
  for (auto id : ready_) confirmed(id);
  ready_.clear();
  return failure_;
}

Status KafkaSink::flush(Duration deadline) {
  if (!rk_) return Status::ok();
  const auto until = Clock::now() + deadline;
  while (!pending_.empty() || !delivered_.empty() || !waiting_.empty()) {
    if (!failure_.is_ok()) return failure_;
    if (Clock::now() >= until) {
      return Status::retry("mirror " + opt_.mirror + ": " +
                           std::to_string(pending_.size() + delivered_.size()) +
                           " records not acknowledged by target " + opt_.cluster.name +
                           " within the drain deadline");
    }
    rd_kafka_poll(rk_.get(), 50);
    persist_map();
  }
  return failure_;
}

void KafkaSink::close() {
  if (!rk_) return;
  rd_kafka_flush(rk_.get(), 5000);
  for (auto& [name, rkt] : topics_) rd_kafka_topic_destroy(rkt);
  topics_.clear();
  rk_.reset();
}

}  // namespace mqdr::kafka
