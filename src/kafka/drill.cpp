// Drill markers of a Kafka mirror (mqdr/broker.hpp DrillMarkers): records keyed by the marker in
// partition 0 of the heartbeat topic, which every mirror with heartbeats carries; the drill's
// consumer is a consumer group of that name, whose offsets the mirror's group sync translates
// like any selected group's (GroupSync::wanted).

#include <spdlog/spdlog.h>

#include <chrono>
#include <algorithm>
#include <functional>
#include <map>
#include <thread>

#include "kafka/ops.hpp"

namespace mqdr::kafka {

namespace {
using Clock = std::chrono::steady_clock;

int left_ms(Clock::time_point until) {
  return static_cast<int>(std::max<std::int64_t>(
      1, std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count()));
}

struct Delivery {
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__IN_PROGRESS;
  std::int64_t offset = -1;
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  auto* d = static_cast<Delivery*>(m->_private);
  d->err = m->err;
  d->offset = m->offset;
}

struct ConsumerCloser {
  void operator()(rd_kafka_t* rk) const {
    rd_kafka_assign(rk, nullptr);
    rd_kafka_destroy(rk);
  }
};

// Reads partition 0 of `topic` from `from` up to (not including) `to`, calling `fn(offset, key)`
// for each record. Throws KafkaError when the range cannot be read before `until`.
void scan(const ClusterConfig& cluster, const std::string& topic, std::int64_t from,
          std::int64_t to, Clock::time_point until,
          const std::function<void(std::int64_t, std::string_view)>& fn) {
  if (to <= from) return;
  ClientLabel label{"cluster=" + cluster.name + " role=drill"};
  std::unique_ptr<rd_kafka_t, ConsumerCloser> c(
      make_client(RD_KAFKA_CONSUMER,
                  make_conf(cluster,
                            {{"group.id", "mqdr-drill-reader"}, {"enable.auto.commit", "false"},
                             {"enable.partition.eof", "false"}, {"client.id", "mqdr-drill"}},
                            {}, &label))
          .release());
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic.c_str(), 0)->offset = from;
  rd_kafka_assign(c.get(), l);
  rd_kafka_topic_partition_list_destroy(l);
  std::int64_t next = from;
  while (next < to) {
    if (Clock::now() >= until) {
      throw KafkaError("read " + topic + "[0] on " + cluster.name + " up to offset " +
                           std::to_string(to) + ": stopped at " + std::to_string(next),
                       true);
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c.get(), 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      next = m->offset + 1;
      fn(m->offset, std::string_view(static_cast<const char*>(m->key), m->key == nullptr ? 0 : m->key_len));
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      const std::string e = rd_kafka_message_errstr(m);
      rd_kafka_message_destroy(m);
      throw KafkaError("read " + topic + "[0] on " + cluster.name + ": " + e, true);
    }
    rd_kafka_message_destroy(m);
  }
}
}  // namespace

Status KafkaMirrorOps::drill_prepare(Duration deadline) {
  if (ctx_.mirror.kafka.heartbeat_interval.count() <= 0) {
    return Status::fatal("mirror " + ctx_.mirror.name +
                         " has heartbeats off (heartbeat_interval: 0s); drill markers travel in "
                         "its heartbeat topic");
  }
  const auto until = Clock::now() + deadline;
  const std::string target = policy_.target_topic(kHeartbeatTopic);
  try {
    // The worker creates the heartbeat topic; a drill may come first on a new cluster.
    create_topics(src_.get(),
                  {NewTopicSpec{kHeartbeatTopic, 1, {{"retention.ms", "3600000"}, {"segment.ms", "600000"}}}},
                  left_ms(until));
  } catch (const KafkaError& e) {
    return Status::retry("cannot create " + kHeartbeatTopic + " on " + ctx_.source.name + ": " + e.what());
  }
  std::string last;
  while (Clock::now() < until) {
    try {
      ClusterMeta md = fetch_metadata(tgt_.get(), std::min(left_ms(until), 5000), &target);
      if (md.topics.count(target) != 0) return Status::ok();
      last = "not there yet";
    } catch (const KafkaError& e) {
      last = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return Status::retry("mirror " + ctx_.mirror.name + " did not create " + target + " on " +
                       ctx_.target.name + " in time (" + last + ")");
}

Status KafkaMirrorOps::drill_write(DrillMarkers& markers, int count, int consume, Duration deadline) {
  const auto until = Clock::now() + deadline;
  try {
    ClientLabel label{"mirror=" + ctx_.mirror.name + " cluster=" + ctx_.source.name + " role=drill"};
    ConfPtr conf = make_conf(ctx_.source, {{"client.id", "mqdr-drill"}, {"acks", "all"}},
                             {}, &label);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), on_delivery);
    Handle producer = make_client(RD_KAFKA_PRODUCER, std::move(conf));
    std::vector<Delivery> done(static_cast<std::size_t>(count));
    for (int n = 0; n < count; ++n) {
      const std::string text = drill_marker(markers.id, n);
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer.get(), RD_KAFKA_V_TOPIC(kHeartbeatTopic.c_str()), RD_KAFKA_V_PARTITION(0),
          RD_KAFKA_V_KEY(text.data(), text.size()), RD_KAFKA_V_VALUE(const_cast<char*>(text.data()), text.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&done[static_cast<std::size_t>(n)]),
          RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return Status::retry("produce a drill marker to " + ctx_.source.name + ": " + err_text(err));
      }
    }
    rd_kafka_flush(producer.get(), left_ms(until));
    rd_kafka_poll(producer.get(), 0);
    int acked = 0;
    for (const auto& d : done) {
      if (d.err != RD_KAFKA_RESP_ERR_NO_ERROR) break;
      ++acked;
    }
    markers.written = acked;
    if (acked == 0) {
      return Status::retry("no drill marker was acknowledged by " + ctx_.source.name + ": " +
                           err_text(done.front().err));
    }
    markers.detail = {{"topic", kHeartbeatTopic}, {"partition", 0},
                      {"first_offset", done.front().offset},
                      {"last_offset", done[static_cast<std::size_t>(acked - 1)].offset}};
    // The consumer reads the first `consume` markers on the source and commits after them.
    consume = std::min(consume, acked);
    if (consume > 0) {
      const std::int64_t end = done[static_cast<std::size_t>(consume - 1)].offset + 1;
      int seen = 0;
      scan(ctx_.source, kHeartbeatTopic, done.front().offset, end, until,
           [&](std::int64_t, std::string_view key) {
             if (parse_drill_marker(key, markers.id)) ++seen;
           });
      if (seen != consume) {
        return Status::fatal("the drill consumer read " + std::to_string(seen) + " of the first " +
                             std::to_string(consume) + " markers back from " + ctx_.source.name);
      }
      alter_group_offsets(src_.get(), markers.consumer, {{{kHeartbeatTopic, 0}, end}}, left_ms(until));
      markers.detail["committed_offset"] = end;
    }
    markers.consumed = consume;
    return Status::ok();
  } catch (const KafkaError& e) {
    return Status::retry("drill markers on " + ctx_.source.name + ": " + e.what());
  }
}

Status KafkaMirrorOps::drill_check(const DrillMarkers& markers, DrillCheck& out, Duration deadline) {
  const auto until = Clock::now() + deadline;
  const std::string target = policy_.target_topic(kHeartbeatTopic);
  try {
    auto [low, high] = query_watermarks(tgt_.get(), target, 0, left_ms(until));
    std::map<int, std::vector<std::int64_t>> where;  // marker -> offsets on the target
    scan(ctx_.target, target, low, high, until, [&](std::int64_t offset, std::string_view key) {
      if (auto n = parse_drill_marker(key, markers.id)) where[*n].push_back(offset);
    });
    out.on_target = static_cast<int>(where.size());
    for (int n = 0; n < markers.written; ++n) {
      if (where.count(n) == 0) out.lost.push_back(n);
    }
    GroupOffsets committed = list_group_offsets(tgt_.get(), markers.consumer, left_ms(until));
    auto it = committed.find({target, 0});
    out.resume_checked = true;
    if (it == committed.end()) {
      // A consumer without a position would start at auto.offset.reset: not a resume.
      out.detail["consumer_position"] = nullptr;
      for (int n = markers.consumed; n < markers.written; ++n) out.resume_missing.push_back(n);
      out.detail["problem"] = "group " + markers.consumer + " has no committed offset on " +
                              ctx_.target.name + " for " + target + "[0]";
      return Status::ok();
    }
    out.detail["consumer_position"] = it->second;
    out.detail["topic"] = target;
    count_resume(markers, [&](int n) {
      auto w = where.find(n);
      return w != where.end() && std::any_of(w->second.begin(), w->second.end(),
                                             [&](std::int64_t o) { return o >= it->second; });
    }, out);
    return Status::ok();
  } catch (const KafkaError& e) {
    return Status::retry("drill markers on " + ctx_.target.name + ": " + e.what());
  }
}

}  // namespace mqdr::kafka
