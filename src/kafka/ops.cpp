#include "kafka/ops.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "kafka/group_sync.hpp"
#include "kafka/map_reader.hpp"
#include "kafka/probe.hpp"
#include "kafka/worker.hpp"

namespace mqdr::kafka {

namespace {
using Clock = std::chrono::steady_clock;
int ms(Duration d) { return static_cast<int>(std::max<std::int64_t>(1, d.count())); }

struct ConsumerDeleter {
  void operator()(rd_kafka_t* rk) const {
    rd_kafka_assign(rk, nullptr);
    rd_kafka_destroy(rk);
  }
};

// A record's content as a mirror must keep it (our origin header left out).
std::string content(const rd_kafka_message_t* m) {
  std::string out;
  auto put = [&](const void* p, std::size_t n, bool null) {
    if (null) {
      out += 'N';
    } else {
      out += 'V';
      out += std::to_string(n);
      out += ':';
    }
    if (!null) out.append(static_cast<const char*>(p), n);
  };
  put(m->key, m->key_len, m->key == nullptr);
  put(m->payload, m->len, m->payload == nullptr);
  rd_kafka_timestamp_type_t tt;
  out += 'T';
  out += std::to_string(rd_kafka_message_timestamp(m, &tt));
  rd_kafka_headers_t* h = nullptr;
  if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h != nullptr) {
    for (std::size_t i = 0; i < rd_kafka_header_cnt(h); ++i) {
      const char* name = nullptr;
      const void* v = nullptr;
      std::size_t n = 0;
      if (rd_kafka_header_get_all(h, i, &name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (kOriginHeader == name) continue;
      out += 'H';
      out += name;
      out += '=';
      put(v, n, v == nullptr);
    }
  }
  return out;
}
}  // namespace

KafkaMirrorOps::KafkaMirrorOps(MirrorContext ctx)
    : ctx_(std::move(ctx)), policy_(ctx_.mirror.kafka, ctx_.source.name, ctx_.target.name) {
  src_label_.label = "mirror=" + ctx_.mirror.name + " cluster=" + ctx_.source.name + " role=ops";
  tgt_label_.label = "mirror=" + ctx_.mirror.name + " cluster=" + ctx_.target.name + " role=ops";
  src_ = make_client(RD_KAFKA_PRODUCER, make_conf(ctx_.source, {{"client.id", "mqdr-ops"}}, {}, &src_label_));
  tgt_ = make_client(RD_KAFKA_PRODUCER, make_conf(ctx_.target, {{"client.id", "mqdr-ops"}}, {}, &tgt_label_));
}

std::vector<KafkaMirrorOps::PartitionRange> KafkaMirrorOps::ranges(int timeout_ms) {
  std::vector<PartitionRange> out;
  ClusterMeta md = fetch_metadata(src_.get(), timeout_ms);
  GroupOffsets committed = list_group_offsets(src_.get(), mirror_group_id(ctx_.mirror.name), timeout_ms);
  for (const auto& [name, t] : md.topics) {
    if (!policy_.selected(name) || name == kHeartbeatTopic) continue;
    for (int p = 0; p < t.partitions; ++p) {
      PartitionRange r;
      r.topic = name;
      r.partition = p;
      std::tie(r.low, r.high) = query_watermarks(src_.get(), name, p, timeout_ms);
      auto it = committed.find({name, p});
      if (it != committed.end()) r.mirrored = it->second;
      out.push_back(std::move(r));
    }
  }
  return out;
}

Lag KafkaMirrorOps::lag(Duration timeout) {
  Lag lag;
  try {
    std::int64_t total = 0;
    for (const auto& r : ranges(ms(timeout))) {
      total += std::max<std::int64_t>(0, r.high - std::max(r.low, r.mirrored));
    }
    lag.records = total;
    if (total == 0) {
      lag.seconds = 0;
    } else if (ctx_.stats) {
      lag.seconds = ctx_.stats->snapshot().lag_seconds;
    }
  } catch (const KafkaError& e) {
    spdlog::warn("mirror={} lag unknown: {}", ctx_.mirror.name, e.what());
  }
  return lag;
}

Status KafkaMirrorOps::final_sync(Duration deadline) {
  // A dead primary cannot be read: the offsets the mirror's group sync wrote last (every
  // group_sync_interval) stand. Waiting for it would only delay the switch.
  if (every_server_refuses(ctx_.source.kafka.bootstrap_servers, 300)) {
    spdlog::warn("mirror={} final group offset sync skipped: every server of {} refuses "
                 "connections; the offsets synced last stand",
                 ctx_.mirror.name, ctx_.source.name);
    return Status::ok();
  }
  // Without `groups` only the drill's consumer groups are carried over: best effort, briefly.
  const bool drill_only = ctx_.mirror.kafka.groups.empty();
  if (drill_only) deadline = std::min(deadline, Duration(3000));
  try {
    MapReader reader(ctx_.target, offset_map_topic(ctx_.mirror.name), ctx_.mirror.name);
    GroupSync sync(ctx_.mirror.name, ctx_.mirror.kafka.groups, policy_, src_.get(), tgt_.get(),
                   reader, mirror_group_id(ctx_.mirror.name));
    std::unique_ptr<MapReader> forward;
    if (auto other = opposite_mirror(ctx_)) {
      forward = std::make_unique<MapReader>(ctx_.source, offset_map_topic(*other), ctx_.mirror.name);
      sync.set_forward(forward.get());
    }
    GroupSyncResult r = sync.run(ms(deadline), true);
    spdlog::info("mirror={} final group offset sync: {} groups written, {} active on target",
                 ctx_.mirror.name, r.synced, r.skipped_active);
    if (!r.errors.empty() && !drill_only) return Status::retry("final group offset sync: " + r.errors.front());
    return Status::ok();
  } catch (const KafkaError& e) {
    if (drill_only) {
      spdlog::warn("mirror={} drill consumer offsets not synced: {}", ctx_.mirror.name, e.what());
      return Status::ok();
    }
    return Status::retry("mirror " + ctx_.mirror.name + ": final group offset sync: " + e.what());
  }
}

Status KafkaMirrorOps::promote(Duration deadline) {
  // Target topics are ordinary writable topics; what makes the target usable is that consumer
  // groups resume exactly where they were: the translated offsets.
  return final_sync(deadline);
}

nlohmann::json KafkaMirrorOps::unreplicated(Duration deadline) {
  nlohmann::json out = {{"mirror", ctx_.mirror.name}, {"source", ctx_.source.name}};
  nlohmann::json parts = nlohmann::json::array();
  std::int64_t total = 0;
  try {
    for (const auto& r : ranges(ms(deadline))) {
      const std::int64_t from = std::max(r.low, r.mirrored);
      if (r.high <= from) continue;
      parts.push_back({{"topic", r.topic}, {"partition", r.partition}, {"from_offset", from},
                       {"to_offset", r.high}, {"records", r.high - from}});
      total += r.high - from;
    }
  } catch (const KafkaError& e) {
    out["error"] = e.what();
  }
  out["partitions"] = std::move(parts);
  out["records"] = total;
  return out;
}

VerifyResult KafkaMirrorOps::verify(Duration deadline) {
  VerifyResult res;
  const auto until = Clock::now() + deadline;
  auto left = [&] { return static_cast<int>(std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count())); };
  std::vector<PartitionRange> rs;
  MapReader reader(ctx_.target, offset_map_topic(ctx_.mirror.name), ctx_.mirror.name);
  try {
    rs = ranges(ms(deadline));
    reader.catch_up(std::max(1, left()));
  } catch (const KafkaError& e) {
    res.equal = false;
    res.first_difference = std::string("cannot read: ") + e.what();
    return res;
  }
  ClientLabel sl{"mirror=" + ctx_.mirror.name + " cluster=" + ctx_.source.name + " role=verify"};
  ClientLabel tl{"mirror=" + ctx_.mirror.name + " cluster=" + ctx_.target.name + " role=verify"};
  std::map<std::string, std::string> cc = {{"enable.auto.commit", "false"}, {"group.id", "mqdr-verify"}, {"enable.partition.eof", "false"},
                                           {"isolation.level", "read_committed"}};
  std::unique_ptr<rd_kafka_t, ConsumerDeleter> sc(make_client(RD_KAFKA_CONSUMER, make_conf(ctx_.source, cc, {}, &sl)).release());
  std::unique_ptr<rd_kafka_t, ConsumerDeleter> tc(make_client(RD_KAFKA_CONSUMER, make_conf(ctx_.target, cc, {}, &tl)).release());

  for (const auto& r : rs) {
    const std::string target = policy_.target_topic(r.topic);
    const std::string where = r.topic + "[" + std::to_string(r.partition) + "]";
    const std::int64_t end = r.mirrored < 0 ? r.low : r.mirrored;
    nlohmann::json& d = res.detail[where];
    d["source_from"] = r.low;
    d["source_to"] = end;
    if (end <= r.low) {
      d["compared"] = 0;
      continue;
    }
    const PartitionMap* pm = reader.map().find(target, r.partition);
    if (pm == nullptr) {
      res.unchecked.push_back(where + ": no offset map entries");
      continue;
    }
    auto assign = [](rd_kafka_t* rk, const std::string& t, std::int32_t p, std::int64_t off) {
      rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(l, t.c_str(), p)->offset = off;
      rd_kafka_assign(rk, l);
      rd_kafka_topic_partition_list_destroy(l);
    };
    assign(sc.get(), r.topic, r.partition, r.low);
    bool t_assigned = false;
    std::int64_t compared = 0;
    rd_kafka_message_t* tm = nullptr;  // the current target record
    bool stop = false;
    while (!stop) {
      if (left() == 0) {
        res.unchecked.push_back(where + ": deadline reached after " + std::to_string(compared) + " records");
        break;
      }
      rd_kafka_message_t* sm = rd_kafka_consumer_poll(sc.get(), 100);
      if (sm == nullptr) continue;
      if (sm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_message_destroy(sm);
        continue;
      }
      if (sm->partition != r.partition || rd_kafka_topic_name(sm->rkt) != r.topic) {
        rd_kafka_message_destroy(sm);  // fetched before the assignment moved on
        continue;
      }
      if (sm->offset >= end) {
        rd_kafka_message_destroy(sm);
        break;
      }
      // Exact position of this source record on the target (skip records never mirrored,
      // e.g. loop records from the target itself).
      auto t = pm->to_target(sm->offset);
      auto back = t ? pm->to_source(*t) : std::nullopt;
      if (!t || !back || *back != sm->offset) {
        rd_kafka_message_destroy(sm);
        continue;
      }
      if (!t_assigned) {
        assign(tc.get(), target, r.partition, *t);
        t_assigned = true;
      }
      while ((tm == nullptr || tm->offset < *t) && left() > 0) {
        if (tm != nullptr) rd_kafka_message_destroy(tm);
        tm = rd_kafka_consumer_poll(tc.get(), 100);
        if (tm != nullptr && tm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          rd_kafka_message_destroy(tm);
          tm = nullptr;
        }
      }
      if (tm == nullptr || tm->offset != *t || content(sm) != content(tm)) {
        if (res.equal && left() > 0) {
          res.equal = false;
          res.first_difference = where + " offset " + std::to_string(sm->offset) + ": target " +
                                 target + "[" + std::to_string(r.partition) + "]@" +
                                 std::to_string(*t) +
                                 (tm == nullptr || tm->offset != *t ? " is missing" : " differs");
        }
        stop = true;
      }
      ++compared;
      // The last mirrored record compared: nothing after it is waited for.
      if (sm->offset + 1 >= end) stop = true;
      rd_kafka_message_destroy(sm);
    }
    if (tm != nullptr) rd_kafka_message_destroy(tm);
    rd_kafka_assign(tc.get(), nullptr);
    d["compared"] = compared;
    if (!res.equal) break;
  }
  return res;
}

}  // namespace mqdr::kafka
