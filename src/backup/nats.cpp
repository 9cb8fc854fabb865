// NATS JetStream backups: each selected stream's messages (subject, header block, data, stream
// sequence, time) read in order through an ephemeral, ack-less consumer (nats::StreamReader, no
// trace on the stream), the stream's config and its durable consumers' configs and ack floors.
// Restores recreate the streams (as relay targets: limits raised by the headers a restore adds),
// publish through nats::StreamSink (Nats-Msg-Id "<stream>:<sequence>" plus Mqdr-Source-* headers,
// each message expecting its predecessor), resume after the last source sequence the target
// stream holds, and recreate the durable consumers positioned after their translated ack floor.
#include <nats/nats.h>

#include <algorithm>
#include <map>
#include <thread>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "backup/kinds.hpp"
#include "nats/client.hpp"
#include "nats/positions.hpp"
#include "nats/reader.hpp"
#include "nats/sink.hpp"
#include "nats/topology.hpp"

namespace mqdr::backup {

namespace {

using json = nlohmann::json;
using namespace mqdr::nats;
constexpr Duration kTimeout{std::chrono::seconds(10)};

std::string str(const char* s) { return s != nullptr ? s : ""; }

json spec_json(const StreamSpec& s) {
  return {{"subjects", s.subjects},
          {"retention", static_cast<int>(s.retention)},
          {"max_age_ns", s.max_age_ns},
          {"max_bytes", s.max_bytes},
          {"max_msgs", s.max_msgs},
          {"max_msgs_per_subject", s.max_msgs_per_subject},
          {"max_msg_size", s.max_msg_size},
          {"storage", static_cast<int>(s.storage)},
          {"discard", static_cast<int>(s.discard)},
          {"duplicates_ns", s.duplicates_ns},
          {"replicas", s.replicas},
          {"allow_rollup", s.allow_rollup},
          {"deny_delete", s.deny_delete},
          {"deny_purge", s.deny_purge}};
}

StreamSpec spec_of(const std::string& name, const json& j) {
  StreamSpec s;
  s.name = name;
  s.subjects = j.value("subjects", std::vector<std::string>{});
  s.retention = static_cast<jsRetentionPolicy>(j.value("retention", 0));
  s.max_age_ns = j.value("max_age_ns", std::int64_t{0});
  s.max_bytes = j.value("max_bytes", std::int64_t{-1});
  s.max_msgs = j.value("max_msgs", std::int64_t{-1});
  s.max_msgs_per_subject = j.value("max_msgs_per_subject", std::int64_t{-1});
  s.max_msg_size = j.value("max_msg_size", std::int32_t{-1});
  s.storage = static_cast<jsStorageType>(j.value("storage", 0));
  s.discard = static_cast<jsDiscardPolicy>(j.value("discard", 0));
  s.duplicates_ns = j.value("duplicates_ns", std::int64_t{0});
  s.replicas = j.value("replicas", std::int64_t{1});
  s.allow_rollup = j.value("allow_rollup", false);
  s.deny_delete = j.value("deny_delete", false);
  s.deny_purge = j.value("deny_purge", false);
  return s;
}

// A connection and a JetStream context on one cluster.
struct Js {
  Connection conn;
  Ptr<jsCtx> js;
  Js(const ClusterConfig& cluster, const std::string& name) {
    ensure_library();
    Status st = conn.connect(cluster, name, kTimeout);
    if (!st.is_ok()) throw std::runtime_error(st.message());
    st = conn.jetstream(cluster, kTimeout, js);
    if (!st.is_ok()) throw std::runtime_error(st.message());
  }
};

class NatsReader : public BackupReader {
 public:
  NatsReader(const BackupPlanConfig& plan, const ClusterConfig& cluster)
      : cluster_(cluster), selector_(plan.streams), js_(cluster, "mqdr/backup/" + plan.name) {}

  std::vector<PartitionHead> heads() override {
    std::string error;
    auto names = list_streams(js_.js.get(), error);
    if (!names) throw std::runtime_error(fmt::format("cluster {}: {}", cluster_.name, error));
    std::vector<PartitionHead> out;
    for (const auto& n : *names) {
      if (!selector_.matches(n)) continue;
      jsStreamInfo* si = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      const natsStatus s = js_GetStreamInfo(&si, js_.js.get(), n.c_str(), nullptr, &code);
      if (s != NATS_OK) throw std::runtime_error(fmt::format("stream {}: {}", n, error_text(s, code)));
      Ptr<jsStreamInfo> info(si);
      const auto first = static_cast<std::int64_t>(std::max<std::uint64_t>(1, info->State.FirstSeq));
      const auto end = static_cast<std::int64_t>(info->State.LastSeq + 1);
      out.push_back(PartitionHead{n, 0, std::min(first, end), end});
    }
    return out;
  }

  json topology(const std::vector<std::string>& items) override {
    json streams = json::object();
    for (const auto& n : items) {
      StreamSpec spec;
      Status st = read_stream(js_.js.get(), n, cluster_.name, spec);
      if (!st.is_ok()) throw std::runtime_error(st.message());
      streams[n] = spec_json(spec);
    }
    return {{"streams", streams}};
  }

  json positions(const std::vector<std::string>& items) override {
    json consumers = json::object();
    for (const auto& n : items) {
      jsConsumerInfoList* list = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      const natsStatus s = js_Consumers(&list, js_.js.get(), n.c_str(), nullptr, &code);
      if (s == NATS_NOT_FOUND) continue;
      if (s != NATS_OK) throw std::runtime_error(fmt::format("consumers of {}: {}", n, error_text(s, code)));
      Ptr<jsConsumerInfoList> owned(list);
      json arr = json::array();
      for (int i = 0; i < list->Count; ++i) {
        const jsConsumerInfo* ci = list->List[i];
        if (ci == nullptr || ci->Config == nullptr || ci->Config->Durable == nullptr) continue;
        const std::string name = ci->Config->Durable;
        if (name.starts_with("mqdr")) continue;  // mqdr's own relay consumers
        const jsConsumerConfig& c = *ci->Config;
        arr.push_back({{"durable", name},
                       {"description", str(c.Description)},
                       {"deliver_subject", str(c.DeliverSubject)},
                       {"deliver_group", str(c.DeliverGroup)},
                       {"filter_subject", str(c.FilterSubject)},
                       {"ack_policy", static_cast<int>(c.AckPolicy)},
                       {"ack_wait_ns", c.AckWait},
                       {"max_deliver", c.MaxDeliver},
                       {"max_ack_pending", c.MaxAckPending},
                       {"max_waiting", c.MaxWaiting},
                       {"replay_policy", static_cast<int>(c.ReplayPolicy)},
                       {"headers_only", c.HeadersOnly},
                       {"flow_control", c.FlowControl},
                       {"heartbeat_ns", c.Heartbeat},
                       {"ack_floor", ci->AckFloor.Stream}});
      }
      if (!arr.empty()) consumers[n] = arr;
    }
    return {{"consumers", consumers}};
  }

  std::int64_t read(const PartitionHead& h, std::int64_t from,
                    const std::function<bool(Record&)>& out) override {
    if (from >= h.end) return from;
    StreamReader reader(js_.conn.get(), cluster_, js_.js.get(), h.item);
    Status st = reader.open(static_cast<std::uint64_t>(from));
    if (!st.is_ok()) throw std::runtime_error(fmt::format("stream {}: {}", h.item, st.message()));
    std::int64_t next = from;
    std::vector<StoredMessage> batch;
    int idle = 0;
    while (next < h.end) {
      batch.clear();
      st = reader.next(batch, 512, std::chrono::seconds(1));
      if (!st.is_ok()) throw std::runtime_error(fmt::format("stream {}: {}", h.item, st.message()));
      if (batch.empty()) {
        // Nothing for 3 s: the rest of [next, end) was deleted meanwhile (limits, purge), or the
        // server is slow. Either way the next backup continues from `next`, so nothing is skipped.
        if (++idle >= 3) return next;
        continue;
      }
      idle = 0;
      for (auto& m : batch) {
        if (static_cast<std::int64_t>(m.seq) >= h.end) return next;
        Record r;
        r.item = h.item;
        r.position = static_cast<std::int64_t>(m.seq);
        r.key = std::move(m.subject);
        r.value = std::move(m.payload);
        r.timestamp_ms = m.time_ns / 1000000;
        r.attributes.emplace_back(std::string(kTimeNsAttribute), std::to_string(m.time_ns));
        if (!m.header_block.empty()) {
          bool exact = false;
          if (parse_header_block(m.header_block, r.headers)) {
            std::string again = "NATS/1.0\r\n";
            append_header_lines(again, r.headers);
            again += "\r\n";
            exact = again == m.header_block;
          }
          if (!exact) r.attributes.emplace_back(std::string(kRawHeadersAttribute), m.header_block);
        }
        next = r.position + 1;
        if (!out(r)) return next;
      }
    }
    return std::max(next, h.end);
  }

 private:
  ClusterConfig cluster_;
  StreamSelector selector_;
  Js js_;
};

// Routes records to one StreamSink per target stream (records come stream after stream).
class MultiStreamSink : public Sink {
 public:
  MultiStreamSink(natsConnection* conn, ClusterConfig cluster, std::map<std::string, std::string> origin_of)
      : conn_(conn), cluster_(std::move(cluster)), origin_of_(std::move(origin_of)) {}

  Status open() override { return Status::ok(); }

  Status write(std::span<const Record> records, std::uint64_t first_id) override {
    std::size_t i = 0;
    while (i < records.size()) {
      std::size_t j = i;
      while (j < records.size() && records[j].item == records[i].item) ++j;
      StreamSink* sink = nullptr;
      Status st = sink_for(records[i].item, sink);
      if (!st.is_ok()) return st;
      st = sink->write(records.subspan(i, j - i), first_id + i);
      if (!st.is_ok()) return st;
      i = j;
    }
    return Status::ok();
  }

  Status poll(Duration wait, const std::function<void(std::uint64_t)>& confirmed) override {
    Status result;
    const Duration each = sinks_.empty() ? wait : Duration(wait.count() / static_cast<long>(sinks_.size()));
    for (auto& [name, s] : sinks_) {
      Status st = s->poll(each, confirmed);
      if (!st.is_ok() && result.is_ok()) result = st;
    }
    if (sinks_.empty()) std::this_thread::sleep_for(wait);
    return result;
  }

  Status flush(Duration deadline) override {
    for (auto& [name, s] : sinks_) {
      Status st = s->flush(deadline);
      if (!st.is_ok()) return st;
    }
    return Status::ok();
  }

  void close() override {
    for (auto& [name, s] : sinks_) s->close();
    sinks_.clear();
  }

 private:
  Status sink_for(const std::string& stream, StreamSink*& out) {
    auto it = sinks_.find(stream);
    if (it == sinks_.end()) {
      StreamSinkOptions o;
      o.mirror = "restore";
      o.source_stream = origin_of_.count(stream) != 0 ? origin_of_[stream] : stream;
      o.target_stream = stream;
      auto sink = std::make_unique<StreamSink>(conn_, cluster_, o);
      Status st = sink->open();
      if (!st.is_ok()) return st;
      it = sinks_.emplace(stream, std::move(sink)).first;
    }
    out = it->second.get();
    return Status::ok();
  }

  natsConnection* conn_;
  ClusterConfig cluster_;
  std::map<std::string, std::string> origin_of_;  // target stream -> original stream name
  std::map<std::string, std::unique_ptr<StreamSink>> sinks_;
};

class NatsTarget : public RestoreTarget {
 public:
  explicit NatsTarget(const ClusterConfig& cluster) : cluster_(cluster), js_(cluster, "mqdr/restore") {}

  void apply_topology(const json& topology, const Renames& renames) override {
    const json streams = topology.value("streams", json::object());
    for (const auto& [name, spec_j] : streams.items()) {
      const std::string target = renamed(renames, name);
      origin_of_[target] = name;
      StreamSpec source = spec_of(name, spec_j);
      StreamSpec desired;
      Status st = target_spec(source, NatsMode::relay, "", desired);
      if (!st.is_ok()) throw std::runtime_error(fmt::format("stream {}: {}", name, st.message()));
      desired.name = target;
      SyncResult res;
      st = apply_stream(js_.js.get(), desired, res);
      if (!st.is_ok()) throw std::runtime_error(fmt::format("stream {} on {}: {}", target, cluster_.name, st.message()));
      spdlog::info("restore: stream {} {} on {}", target, res.created ? "created" : "ready", cluster_.name);
    }
  }

  json prepare(const std::string&, std::int32_t, const json* saved) override {
    return saved != nullptr ? *saved : json::object();
  }

  Resume resume(const std::string& item, std::int32_t, const json&) override {
    std::string error;
    const std::string origin = origin_of_.count(item) != 0 ? origin_of_[item] : item;
    auto last = last_relayed_sequence(js_.js.get(), item, origin, error);
    if (!last) throw std::runtime_error(fmt::format("stream {} on {}: {}", item, cluster_.name, error));
    Resume r;
    r.skip_through = static_cast<std::int64_t>(*last);
    return r;
  }

  SinkPtr make_sink(const std::string&) override {
    return std::make_unique<MultiStreamSink>(js_.conn.get(), cluster_, origin_of_);
  }

  void apply_positions(const json& positions, const Renames& renames, const RestoredPositions&) override {
    std::vector<std::string> problems;
    const json all = positions.value("consumers", json::object());
    for (const auto& [stream, list] : all.items()) {
      const std::string target = renamed(renames, stream);
      for (const auto& c : list) {
        const std::string name = c.value("durable", "");
        std::string error;
        auto floor = translate_sequence(js_.js.get(), target, c.value("ack_floor", std::uint64_t{0}), false, error);
        if (!floor) {
          problems.push_back(fmt::format("consumer {} of {}: {}", name, target, error));
          continue;
        }
        const std::string description = c.value("description", "");
        const std::string deliver_subject = c.value("deliver_subject", "");
        const std::string deliver_group = c.value("deliver_group", "");
        const std::string filter = c.value("filter_subject", "");
        jsConsumerConfig cc;
        jsConsumerConfig_Init(&cc);
        cc.Durable = name.c_str();
        if (!description.empty()) cc.Description = description.c_str();
        if (!deliver_subject.empty()) cc.DeliverSubject = deliver_subject.c_str();
        if (!deliver_group.empty()) cc.DeliverGroup = deliver_group.c_str();
        if (!filter.empty()) cc.FilterSubject = filter.c_str();
        cc.AckPolicy = static_cast<jsAckPolicy>(c.value("ack_policy", 2));
        cc.AckWait = c.value("ack_wait_ns", std::int64_t{0});
        cc.MaxDeliver = c.value("max_deliver", std::int64_t{-1});
        cc.MaxAckPending = c.value("max_ack_pending", std::int64_t{0});
        if (deliver_subject.empty()) cc.MaxWaiting = c.value("max_waiting", std::int64_t{0});
        cc.ReplayPolicy = static_cast<jsReplayPolicy>(c.value("replay_policy", 0));
        cc.HeadersOnly = c.value("headers_only", false);
        cc.FlowControl = c.value("flow_control", false);
        cc.Heartbeat = c.value("heartbeat_ns", std::int64_t{0});
        const std::uint64_t start = *floor + 1;
        if (start > 1) {
          cc.DeliverPolicy = js_DeliverByStartSequence;
          cc.OptStartSeq = start;
        } else {
          cc.DeliverPolicy = js_DeliverAll;
        }
        jsErrCode code = static_cast<jsErrCode>(0);
        jsConsumerInfo* existing = nullptr;
        if (js_GetConsumerInfo(&existing, js_.js.get(), target.c_str(), name.c_str(), nullptr, &code) == NATS_OK) {
          jsConsumerInfo_Destroy(existing);
          continue;  // restored by an earlier run (or the application's own): left alone
        }
        jsConsumerInfo* created = nullptr;
        const natsStatus s = js_AddConsumer(&created, js_.js.get(), target.c_str(), &cc, nullptr, &code);
        if (s != NATS_OK) {
          problems.push_back(fmt::format("consumer {} of {}: {}", name, target, error_text(s, code)));
          continue;
        }
        jsConsumerInfo_Destroy(created);
      }
    }
    if (!problems.empty()) {
      throw std::runtime_error("durable consumers not restored: " + problems.front() +
                               (problems.size() > 1 ? fmt::format(" (and {} more)", problems.size() - 1) : ""));
    }
  }

 private:
  ClusterConfig cluster_;
  Js js_;
  std::map<std::string, std::string> origin_of_;  // target stream -> original name
};

}  // namespace

std::unique_ptr<BackupReader> make_nats_reader(const BackupPlanConfig& plan, const ClusterConfig& cluster) {
  return std::make_unique<NatsReader>(plan, cluster);
}

std::unique_ptr<RestoreTarget> make_nats_target(const ClusterConfig& cluster) {
  return std::make_unique<NatsTarget>(cluster);
}

}  // namespace mqdr::backup
