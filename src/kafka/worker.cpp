#include "kafka/worker.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <stdexcept>

#include "kafka/group_sync.hpp"
#include "kafka/map_reader.hpp"
#include "kafka/rd.hpp"
#include "kafka/sink.hpp"
#include "kafka/source.hpp"
#include "kafka/topology.hpp"
#include "kafka/topics.hpp"
#include "mqdr/pipeline.hpp"

namespace mqdr::kafka {

std::string mirror_group_id(const std::string& mirror) { return "mqdr-mirror-" + mirror; }
std::string offset_map_topic(const std::string& mirror) { return kOffsetMapPrefix + mirror; }
std::string positions_topic(const std::string& mirror) { return kPositionsPrefix + mirror; }

std::optional<std::string> opposite_mirror(const MirrorContext& ctx) {
  if (ctx.mirror.source == ctx.target.name && ctx.mirror.target == ctx.source.name) {
    return ctx.mirror.name;  // swapped context
  }
  if (ctx.config) {
    for (const auto& m : ctx.config->mirrors) {
      if (m.kind == ClusterKind::kafka && m.source == ctx.target.name &&
          m.target == ctx.source.name && (m.kafka.rename.empty() || m.kafka.rename == "{topic}")) {
        return m.name;
      }
    }
  }
  return std::nullopt;
}

namespace {
using Clock = std::chrono::steady_clock;
constexpr int kAdminTimeoutMs = 10000;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}
}  // namespace

struct MirrorWorker::Impl {
  MirrorContext ctx;
  const KafkaMirrorConfig& cfg;
  TopicPolicy policy;
  ClientLabel src_label, tgt_label, hb_label;
  Handle src_admin, tgt_admin, heartbeat;
  std::unique_ptr<Topology> topology;
  std::unique_ptr<MapReader> map_reader;
  std::unique_ptr<GroupSync> group_sync;
  std::unique_ptr<MapReader> forward_reader;
  OffsetMap sink_map;
  std::vector<std::string> subscribed;
  bool heartbeats_on = false;
  std::string topic_warning;

  explicit Impl(MirrorContext c)
      : ctx(std::move(c)),
        cfg(ctx.mirror.kafka),
        policy(cfg, ctx.source.name, ctx.target.name) {
    src_label.label = "mirror=" + ctx.mirror.name + " cluster=" + ctx.source.name + " role=admin";
    tgt_label.label = "mirror=" + ctx.mirror.name + " cluster=" + ctx.target.name + " role=admin";
    hb_label.label = "mirror=" + ctx.mirror.name + " cluster=" + ctx.source.name + " role=heartbeat";
  }

  void log_error(const std::string& msg) {
    spdlog::error("mirror={} {}", ctx.mirror.name, msg);
    if (ctx.stats) ctx.stats->set_error(msg);
  }

  // Connects the admin clients and proves both clusters answer.
  Status connect() {
    try {
      src_admin = make_client(RD_KAFKA_PRODUCER, make_conf(ctx.source, {{"client.id", "mqdr-" + ctx.mirror.name + "-admin"}}, {}, &src_label));
      tgt_admin = make_client(RD_KAFKA_PRODUCER, make_conf(ctx.target, {{"client.id", "mqdr-" + ctx.mirror.name + "-admin"}}, {}, &tgt_label));
    } catch (const KafkaError& e) {
      return Status::fatal(e.what());
    }
    for (auto [rk, cl] : {std::pair{src_admin.get(), &ctx.source}, std::pair{tgt_admin.get(), &ctx.target}}) {
      try {
        (void)fetch_metadata(rk, kAdminTimeoutMs);
      } catch (const KafkaError& e) {
        return Status::retry("cluster " + cl->name + " (bootstrap_servers " +
                             cl->kafka.bootstrap_servers + ") unreachable: " + e.what());
      }
    }
    return Status::ok();
  }

  Status ensure_internal_topics() {
    try {
      create_topics(tgt_admin.get(),
                    {NewTopicSpec{offset_map_topic(ctx.mirror.name), 1,
                                  {{"cleanup.policy", "compact"}, {"min.compaction.lag.ms", "60000"}}}},
                    kAdminTimeoutMs);
    } catch (const KafkaError& e) {
      return e.retryable() ? Status::retry(e.what()) : Status::fatal(e.what());
    }
    heartbeats_on = cfg.heartbeat_interval.count() > 0;
    if (heartbeats_on) {
      try {
        create_topics(src_admin.get(),
                      // An hour of heartbeats in 10-minute segments: a mirror starting
                      // afresh copies at most that much of them.
                      {NewTopicSpec{kHeartbeatTopic, 1,
                                    {{"retention.ms", "3600000"}, {"segment.ms", "600000"}}}},
                      kAdminTimeoutMs);
        heartbeat = make_client(RD_KAFKA_PRODUCER,
                                make_conf(ctx.source, {{"client.id", "mqdr-" + ctx.mirror.name + "-heartbeat"},
                                                       {"linger.ms", "0"}},
                                          {}, &hb_label));
      } catch (const KafkaError& e) {
        spdlog::warn("mirror={} cluster={} heartbeats off: {}", ctx.mirror.name, ctx.source.name,
                     e.what());
        heartbeats_on = false;
      }
    }
    return Status::ok();
  }

  // Topology pass; returns the topics to subscribe to, or nullopt when the pass failed.
  std::optional<std::vector<std::string>> refresh_topology() {
    TopologyResult res;
    try {
      res = topology->sync();
    } catch (const KafkaError& e) {
      spdlog::warn("mirror={} topology sync failed (retried at the next refresh): {}",
                   ctx.mirror.name, e.what());
      if (ctx.stats) ctx.stats->set_error("topology sync: " + std::string(e.what()));
      return std::nullopt;
    }
    std::vector<std::string> user_topics;
    for (const auto& t : res.selected) {
      if (t != kHeartbeatTopic) user_topics.push_back(t);
    }
    if (user_topics.empty()) {
      std::string w = "no topic on source cluster " + ctx.source.name + " matches topics [" +
                      join(cfg.topics) + "]" +
                      (cfg.exclude_topics.empty() ? "" : " minus exclude_topics [" + join(cfg.exclude_topics) + "]");
      if (w != topic_warning) {
        spdlog::warn("mirror={} {}", ctx.mirror.name, w);
        if (ctx.stats) ctx.stats->set_error(w);
        topic_warning = w;
      }
    } else if (!topic_warning.empty()) {
      topic_warning.clear();
      if (ctx.stats) ctx.stats->clear_error();
    }
    if (!heartbeats_on) {
      std::erase(res.selected, kHeartbeatTopic);
    } else if (std::find(res.selected.begin(), res.selected.end(), kHeartbeatTopic) == res.selected.end()) {
      res.selected.push_back(kHeartbeatTopic);
    }
    std::sort(res.selected.begin(), res.selected.end());
    return res.selected;
  }

  void send_heartbeat() {
    if (!heartbeats_on || !heartbeat) return;
    const std::string value = "{\"mirror\":\"" + ctx.mirror.name + "\",\"source\":\"" +
                              ctx.source.name + "\",\"ts\":" + std::to_string(wall_ms()) + "}";
    rd_kafka_resp_err_t err = rd_kafka_producev(
        heartbeat.get(), RD_KAFKA_V_TOPIC(kHeartbeatTopic.c_str()), RD_KAFKA_V_PARTITION(0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(ctx.mirror.name.data(), ctx.mirror.name.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::debug("mirror={} heartbeat not sent: {}", ctx.mirror.name, err_text(err));
    }
    rd_kafka_poll(heartbeat.get(), 0);
  }

  void sync_groups(bool force) {
    if (!group_sync) return;
    try {
      auto r = group_sync->run(kAdminTimeoutMs, force);
      if (r.synced > 0) {
        spdlog::info("mirror={} group offsets synced: {} groups ({} unchanged, {} active on target)",
                     ctx.mirror.name, r.synced, r.unchanged, r.skipped_active);
      }
      groups_synced_total += static_cast<std::uint64_t>(r.synced);
    } catch (const KafkaError& e) {
      spdlog::warn("mirror={} group offset sync failed (retried): {}", ctx.mirror.name, e.what());
    }
  }

  std::uint64_t groups_synced_total = 0;

  struct Timers {
    explicit Timers(const KafkaMirrorConfig& c)
        : refresh(Clock::now() + c.refresh_interval),
          groups(Clock::now() + c.group_sync_interval),
          heartbeat(Clock::now()),
          detail(Clock::now()) {}
    Clock::time_point refresh, groups, heartbeat, detail;
  };

  // The periodic work around the data path: heartbeats, topology refresh (resubscribing when
  // the selected topics change), group offset sync, status detail.
  Status tick(KafkaSource& source, KafkaSink& sink, Timers& t) {
    auto now = Clock::now();
    if (heartbeats_on && now >= t.heartbeat) {
      send_heartbeat();
      t.heartbeat = now + cfg.heartbeat_interval;
    }
    if (now >= t.refresh) {
      if (auto topics = refresh_topology(); topics && *topics != subscribed) {
        spdlog::info("mirror={} subscription changed: {} topics", ctx.mirror.name, topics->size());
        subscribed = *topics;
        Status st = source.set_topics(subscribed);
        if (!st.is_ok()) return st;
      }
      t.refresh = Clock::now() + cfg.refresh_interval;
    }
    if (now >= t.groups) {
      sync_groups(false);
      t.groups = Clock::now() + cfg.group_sync_interval;
    }
    if (now >= t.detail && ctx.stats) {
      nlohmann::json d;
      d["partitions"] = source.partition_detail();
      d["heartbeat_latency_ms"] = source.heartbeat_latency_ms();
      d["topics"] = subscribed.size();
      d["groups_synced_total"] = groups_synced_total;
      d["dead_lettered"] = sink.dead_lettered();
      d["loop_records_skipped"] = source.skipped();
      d["delivery"] = cfg.delivery == Delivery::exactly_once ? "exactly_once" : "at_least_once";
      ctx.stats->set_detail(std::move(d));
      t.detail = now + std::chrono::seconds(1);
    }
    return Status::ok();
  }

  SourceOptions source_options() {
    SourceOptions so;
    so.mirror = ctx.mirror.name;
    so.cluster = ctx.source;
    so.group_id = mirror_group_id(ctx.mirror.name);
    so.skip_origin = ctx.target.name;
    if (ctx.stats) {
      auto stats = ctx.stats;
      const std::string source = ctx.source.name;
      so.on_source_down = [stats, source](const std::string&) {
        stats->set_error("source " + source + ": all brokers are down");
      };
      so.on_source_back = [stats] { stats->clear_error(); };
    }
    so.properties = cfg.consumer_properties;
    so.metadata_refresh_ms =
        static_cast<int>(std::max<std::int64_t>(1000, cfg.refresh_interval.count()));
    return so;
  }

  SinkOptions sink_options() {
    SinkOptions sk;
    sk.mirror = ctx.mirror.name;
    sk.cluster = ctx.target;
    sk.policy = &policy;
    sk.map_topic = offset_map_topic(ctx.mirror.name);
    sk.dead_letter_topic = cfg.dead_letter_topic;
    sk.properties = cfg.producer_properties;
    sk.stats = ctx.stats.get();
    sk.ensure_partitions = [this](const std::string& t, int n) {
      return topology->ensure_partitions(t, n);
    };
    return sk;
  }

  Status run_at_least_once(std::stop_token stop);
  Status run_exactly_once(std::stop_token stop);
};

MirrorWorker::MirrorWorker(MirrorContext ctx) {
  if (ctx.source.kind != ClusterKind::kafka || ctx.target.kind != ClusterKind::kafka) {
    throw std::invalid_argument("mirror " + ctx.mirror.name +
                                ": source and target must both be Kafka clusters");
  }
  if (ctx.source.kafka.bootstrap_servers.empty() || ctx.target.kafka.bootstrap_servers.empty()) {
    throw std::invalid_argument("mirror " + ctx.mirror.name + ": cluster without bootstrap_servers");
  }
  impl_ = std::make_unique<Impl>(std::move(ctx));
}

MirrorWorker::~MirrorWorker() = default;

Status MirrorWorker::run(std::stop_token stop) {
  Impl& w = *impl_;
  if (w.ctx.stats) w.ctx.stats->set_state("starting");
  Status st = w.connect();
  if (st.is_ok()) st = w.ensure_internal_topics();
  if (!st.is_ok()) {
    w.log_error(st.message());
    if (w.ctx.stats) w.ctx.stats->set_state(st.is_fatal() ? "failed" : "backoff");
    return st;
  }
  w.topology = std::make_unique<Topology>(w.ctx.mirror.name, w.policy, w.cfg.sync_topic_configs,
                                          w.src_admin.get(), w.tgt_admin.get(), kAdminTimeoutMs);
  try {
    w.map_reader = std::make_unique<MapReader>(w.ctx.target, offset_map_topic(w.ctx.mirror.name),
                                               w.ctx.mirror.name);
    w.map_reader->catch_up(60000);
  } catch (const KafkaError& e) {
    st = e.retryable() ? Status::retry(e.what()) : Status::fatal(e.what());
    w.log_error(st.message());
    return st;
  }
  w.sink_map = w.map_reader->map();
  if (!w.cfg.groups.empty()) {
    w.group_sync = std::make_unique<GroupSync>(w.ctx.mirror.name, w.cfg.groups, w.policy,
                                               w.src_admin.get(), w.tgt_admin.get(),
                                               *w.map_reader, mirror_group_id(w.ctx.mirror.name));
    if (auto other = opposite_mirror(w.ctx)) {
      try {
        w.forward_reader = std::make_unique<MapReader>(w.ctx.source, offset_map_topic(*other), w.ctx.mirror.name);
        w.group_sync->set_forward(w.forward_reader.get());
      } catch (const KafkaError& e) {
        spdlog::warn("mirror={} failback translation off: {}", w.ctx.mirror.name, e.what());
      }
    }
  }
  st = w.cfg.delivery == Delivery::exactly_once ? w.run_exactly_once(stop)
                                                 : w.run_at_least_once(stop);
  if (w.ctx.stats) {
    w.ctx.stats->set_state(st.is_ok() ? "stopped" : (st.is_fatal() ? "failed" : "backoff"));
    if (!st.is_ok()) w.ctx.stats->set_error(st.message());
  }
  if (!st.is_ok()) spdlog::error("mirror={} stopped: {}", w.ctx.mirror.name, st.message());
  return st;
}

Status MirrorWorker::Impl::run_at_least_once(std::stop_token stop) {
  const std::string& name = ctx.mirror.name;
  KafkaSource source(source_options());
  KafkaSink sink(sink_options(), &sink_map);

  auto topics = refresh_topology();
  if (!topics) return Status::retry("mirror " + name + ": first topology sync failed");
  subscribed = *topics;
  Status st = source.set_topics(subscribed);
  if (st.is_ok()) st = source.open();
  if (st.is_ok()) st = sink.open();
  if (!st.is_ok()) return st;
  spdlog::info("mirror={} running: {} -> {}, {} topics, delivery at_least_once", name,
               ctx.source.name, ctx.target.name, subscribed.size());

  PipelineOptions po;
  Pipeline pipeline(source, sink, po, ctx.stats.get());
  if (ctx.stats) ctx.stats->set_state("running");

  Timers timers(cfg);
  bool idle = false;
  while (!stop.stop_requested()) {
    st = pipeline.step(idle);
    if (!st.is_ok()) break;
    st = tick(source, sink, timers);
    if (!st.is_ok()) break;
  }
  Status drained = pipeline.drain(po.drain_timeout);
  if (!drained.is_ok()) {
    spdlog::warn("mirror={} drain on stop: {}", name, drained.message());
  }
  source.close();
  sink.close();
  if (heartbeat) rd_kafka_flush(heartbeat.get(), 1000);
  if (!st.is_ok()) return st;
  spdlog::info("mirror={} stopped", name);
  // Asked to stop: what could not be drained is copied again after a restart (at least once).
  return Status::ok();
}

}  // namespace mqdr::kafka

namespace mqdr::kafka {

// exactly_once: one transaction per batch on the target holds the records, their offset-map
// entries and the new source positions (compacted positions topic on the target, like
// MirrorMaker 2's exactly-once source tasks). On assignment the consumer resumes from those
// positions, so a kill -9 at any moment neither loses nor duplicates records for read_committed
// readers: an unfinished transaction is aborted by the next instance's init_transactions().
// One process per mirror: the transactional.id is derived from the mirror name, so a second
// process fences the first.
Status MirrorWorker::Impl::run_exactly_once(std::stop_token stop) {
  const std::string& name = ctx.mirror.name;
  try {
    create_topics(tgt_admin.get(),
                  {NewTopicSpec{positions_topic(name), 1, {{"cleanup.policy", "compact"}}}},
                  kAdminTimeoutMs);
  } catch (const KafkaError& e) {
    return e.retryable() ? Status::retry(e.what()) : Status::fatal(e.what());
  }
  std::string assign_error;
  SourceOptions so = source_options();
  so.on_assign = [&](rd_kafka_topic_partition_list_t* parts) {
    try {
      auto stored = read_positions(ctx.target, positions_topic(name), name, 30000);
      for (int i = 0; i < parts->cnt; ++i) {
        auto it = stored.find({parts->elems[i].topic, parts->elems[i].partition});
        if (it != stored.end()) parts->elems[i].offset = it->second;
      }
    } catch (const KafkaError& e) {
      assign_error = e.what();
    }
  };
  KafkaSource source(so);
  SinkOptions sk = sink_options();
  sk.transactional_id = "mqdr-" + name;
  sk.positions_topic = positions_topic(name);
  KafkaSink sink(sk, &sink_map);

  auto topics = refresh_topology();
  if (!topics) return Status::retry("mirror " + name + ": first topology sync failed");
  subscribed = *topics;
  Status st = sink.open();
  if (st.is_ok()) st = source.set_topics(subscribed);
  if (st.is_ok()) st = source.open();
  if (!st.is_ok()) return st;
  spdlog::info("mirror={} running: {} -> {}, {} topics, delivery exactly_once (transactional.id {})",
               name, ctx.source.name, ctx.target.name, subscribed.size(), sk.transactional_id);
  if (ctx.stats) ctx.stats->set_state("running");

  Timers timers(cfg);
  std::uint64_t next_id = 0;
  auto last_lag = Clock::now();
  Batch batch;
  constexpr std::size_t kTxnRecords = 5000;
  const auto kTxnTime = std::chrono::milliseconds(200);
  while (!stop.stop_requested()) {
    if (!assign_error.empty()) {
      st = Status::retry("mirror " + name + ": cannot read stored positions: " + assign_error);
      break;
    }
    batch.clear();
    const auto until = Clock::now() + kTxnTime;
    st = source.read(batch, kTxnRecords, Duration(100));
    while (st.is_ok() && !batch.empty() && batch.size() < kTxnRecords && Clock::now() < until) {
      const std::size_t before = batch.size();
      st = source.read(batch, kTxnRecords - batch.size(), Duration(10));
      if (batch.size() == before) break;
    }
    if (!st.is_ok()) break;
    if (!assign_error.empty()) continue;  // reported at the top, nothing written
    if (!batch.empty()) {
      st = sink.begin_transaction();
      if (!st.is_ok()) break;
      st = sink.write(batch, next_id);
      if (!st.is_ok()) {
        sink.abort_transaction(Duration(30000));
        break;
      }
      std::map<PartitionKey, std::int64_t> positions;
      std::uint64_t bytes = 0;
      for (const auto& r : batch) {
        auto& p = positions[{r.item, r.partition}];
        p = std::max(p, r.position + 1);
        bytes += r.size_bytes();
      }
      st = sink.commit_transaction(positions, Duration(60000));
      if (!st.is_ok()) break;
      (void)sink.poll(Duration(0), [](std::uint64_t) {});
      next_id += batch.size();
      if (ctx.stats) ctx.stats->add_records(batch.size(), bytes);
      // The group offsets on the source follow, for lag and failover (not for correctness).
      (void)source.commit(batch);
    }
    if (ctx.stats && Clock::now() - last_lag >= std::chrono::seconds(1)) {
      Lag lag = source.lag();
      ctx.stats->set_lag(lag.records, lag.seconds);
      last_lag = Clock::now();
    }
    st = tick(source, sink, timers);
    if (!st.is_ok()) break;
  }
  source.close();
  sink.close();
  if (heartbeat) rd_kafka_flush(heartbeat.get(), 1000);
  if (!st.is_ok()) return st;
  spdlog::info("mirror={} stopped", name);
  return Status::ok();
}

}  // namespace mqdr::kafka
