#include "nats/source.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>

#include <spdlog/spdlog.h>

namespace mqdr::nats {

namespace {

bool to_u64(std::string_view s, std::uint64_t& out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::optional<AckMeta> parse_ack_subject(std::string_view reply) {
  std::string_view tokens[16];
  std::size_t n = 0;
  std::size_t pos = 0;
  while (n < 16) {
    std::size_t dot = reply.find('.', pos);
    tokens[n++] = reply.substr(pos, dot == std::string_view::npos ? dot : dot - pos);
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  if (n < 9 || tokens[0] != "$JS" || tokens[1] != "ACK") return std::nullopt;
  // v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>
  // v2: $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.
  //     <pending>[.<token>]
  std::size_t o = n == 9 ? 2 : 4;
  if (n != 9 && n < 11) return std::nullopt;
  AckMeta m;
  std::uint64_t ts = 0;
  if (!to_u64(tokens[o + 2], m.delivered) || !to_u64(tokens[o + 3], m.stream_seq) ||
      !to_u64(tokens[o + 4], m.consumer_seq) || !to_u64(tokens[o + 5], ts) ||
      !to_u64(tokens[o + 6], m.pending)) {
    return std::nullopt;
  }
  m.timestamp_ns = static_cast<std::int64_t>(ts);
  return m;
}

StreamSource::StreamSource(natsConnection* conn, ClusterConfig cluster, StreamSourceOptions options)
    : conn_(conn), cluster_(std::move(cluster)), options_(std::move(options)) {}

StreamSource::~StreamSource() { close(); }

Status StreamSource::open() {
  jsOptions jo;
  jsOptions_Init(&jo);
  if (!cluster_.nats.api_prefix.empty()) {
    jo.Prefix = cluster_.nats.api_prefix.c_str();
  } else if (!cluster_.nats.domain.empty()) {
    jo.Domain = cluster_.nats.domain.c_str();
  }
  jo.Wait = options_.api_wait.count();
  jsCtx* js = nullptr;
  natsStatus s = natsConnection_JetStream(&js, conn_, &jo);
  if (s != NATS_OK) return Status::fatal("cannot create JetStream context: " + error_text(s));
  js_.reset(js);

  const std::string& stream = options_.stream;
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  s = js_GetStreamInfo(&si, js_.get(), stream.c_str(), nullptr, &code);
  if (s != NATS_OK) {
    if (code == JSStreamNotFoundErr) {
      return Status::fatal("stream " + stream + " does not exist on source cluster " + cluster_.name);
    }
    if (code == JSNotEnabledErr || code == JSNotEnabledForAccountErr || s == NATS_NO_RESPONDERS) {
      return Status::fatal("JetStream is not enabled on source cluster " + cluster_.name);
    }
    return Status::retry("stream info of " + stream + " on source: " + error_text(s, code));
  }
  Ptr<jsStreamInfo> info(si);
  const int retention = static_cast<int>(info->Config->Retention);
  if (info->Config->Retention == js_WorkQueuePolicy) {
    return Status::fatal("stream " + stream +
                         " has WorkQueue retention: a relay would take its messages away from its "
                         "workers; use `mode: native` for this mirror");
  }

  const std::string& name = options_.consumer;
  jsConsumerInfo* ci = nullptr;
  std::uint64_t ack_floor = 0;
  std::uint64_t delivered = 0;
  bool reuse = false;
  s = js_GetConsumerInfo(&ci, js_.get(), stream.c_str(), name.c_str(), nullptr, &code);
  if (s == NATS_OK) {
    Ptr<jsConsumerInfo> cinfo(ci);
    ack_floor = cinfo->AckFloor.Stream;
    delivered = cinfo->Delivered.Consumer;
    if (cinfo->NumWaiting > 0) {
      // Pull requests of another client wait on our durable; recreating the consumer drops them.
      spdlog::warn("mirror={} stream={} consumer {} has {} pull request(s) waiting from another "
                   "client (a relay stopped moments ago, or another mqdr running this mirror); "
                   "recreating it",
                   options_.mirror, stream, name, cinfo->NumWaiting);
    }
    // Nothing fetched-but-unacked, nothing to skip, nobody else pulling: the consumer continues
    // where it is.
    reuse = cinfo->Config->AckPolicy == js_AckAll && cinfo->NumAckPending == 0 &&
            cinfo->NumWaiting == 0 && cinfo->Delivered.Stream == ack_floor &&
            options_.resume_after <= ack_floor &&
            cinfo->Config->MaxAckPending == options_.max_ack_pending &&
            cinfo->Config->AckWait == std::chrono::duration_cast<std::chrono::nanoseconds>(options_.ack_wait).count();
  } else if (code != JSConsumerNotFoundErr) {
    return Status::retry("consumer info of " + stream + " > " + name + ": " + error_text(s, code));
  }
  start_seq_ = std::max(ack_floor, options_.resume_after) + 1;
  if (!reuse) {
    Status st = recreate_consumer(start_seq_, retention);
    if (!st.is_ok()) return st;
  }

  Status st = puller_.open(conn_, cluster_, stream, name, options_.batch);
  if (!st.is_ok()) return st;
  highest_read_ = start_seq_ - 1;
  last_acked_ = start_seq_ - 1;
  next_delivery_ = reuse ? delivered + 1 : 1;
  uncommitted_.clear();
  spdlog::info("mirror={} stream={} relay reads from sequence {} (consumer ack floor {}, target has up to {}){}",
               options_.mirror, stream, start_seq_, ack_floor, options_.resume_after,
               reuse ? "" : ", consumer recreated");
  return Status::ok();
}

Status StreamSource::recreate_consumer(std::uint64_t start_seq, int retention) {
  const std::string& stream = options_.stream;
  auto add = [&](const std::string& durable) -> Status {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    std::string description = "mqdr relay of mirror " + options_.mirror;
    cc.Description = description.c_str();
    cc.AckPolicy = js_AckAll;
    cc.AckWait = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.ack_wait).count();
    cc.MaxDeliver = -1;
    cc.MaxAckPending = options_.max_ack_pending;
    if (start_seq > 1) {
      cc.DeliverPolicy = js_DeliverByStartSequence;
      cc.OptStartSeq = start_seq;
    } else {
      cc.DeliverPolicy = js_DeliverAll;
    }
    jsConsumerInfo* ci = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_AddConsumer(&ci, js_.get(), stream.c_str(), &cc, nullptr, &code);
    if (s != NATS_OK) {
      return Status::retry("cannot create consumer " + stream + " > " + durable + ": " +
                           error_text(s, code));
    }
    jsConsumerInfo_Destroy(ci);
    return Status::ok();
  };
  auto remove = [&](const std::string& durable) -> Status {
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_DeleteConsumer(js_.get(), stream.c_str(), durable.c_str(), nullptr, &code);
    if (s != NATS_OK && code != JSConsumerNotFoundErr) {
      return Status::retry("cannot delete consumer " + stream + " > " + durable + ": " +
                           error_text(s, code));
    }
    return Status::ok();
  };
  const std::string& name = options_.consumer;
  // Interest retention: a message nobody is interested in is removed, so a consumer must hold
  // the interest while the durable one is away.
  const bool hold = retention == js_InterestPolicy;
  const std::string holder = name + "-hold";
  Status st;
  if (hold && !(st = add(holder)).is_ok()) return st;
  if (!(st = remove(name)).is_ok()) return st;
  if (!(st = add(name)).is_ok()) return st;
  if (hold && !(st = remove(holder)).is_ok()) return st;
  return Status::ok();
}

Record StreamSource::to_record(natsMsg* msg, const AckMeta& meta) const {
  Record r;
  r.item = options_.stream;
  r.position = static_cast<std::int64_t>(meta.stream_seq);
  r.key = std::string(natsMsg_GetSubject(msg));
  r.value = std::string(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  r.timestamp_ms = meta.timestamp_ns / 1000000;
  r.attributes.emplace_back(std::string(kTimeNsAttribute), std::to_string(meta.timestamp_ns));
  std::string_view block = raw_header_block(msg);
  if (!block.empty()) {
    bool exact = false;
    if (parse_header_block(block, r.headers)) {
      std::string again = "NATS/1.0\r\n";
      append_header_lines(again, r.headers);
      again += "\r\n";
      exact = again == block;
    }
    if (!exact) r.attributes.emplace_back(std::string(kRawHeadersAttribute), std::string(block));
  }
  const char* reply = natsMsg_GetReply(msg);
  if (reply != nullptr) r.source_reply = reply;
  return r;
}

Status StreamSource::read(Batch& out, std::size_t max, Duration wait) {
  // The connection reconnects by itself; while it cannot, the worker says so (its state tells
  // the failover controller that the mirror from this cluster is broken) and starts again.
  if (natsConnection_Status(conn_) != NATS_CONN_STATUS_CONNECTED) {
    return Status::retry("connection to source " + cluster_.name + " lost; reconnecting");
  }
  std::string stolen;
  Status st = puller_.next(max, wait, [&](natsMsg* msg) {
    if (!stolen.empty()) return;
    auto meta = parse_ack_subject(natsMsg_GetReply(msg));
    if (!meta) return;
    if (meta->consumer_seq > next_delivery_) {
      stolen = "consumer " + options_.consumer + " of stream " + options_.stream +
               " delivered to another reader (deliveries " + std::to_string(next_delivery_) + ".." +
               std::to_string(meta->consumer_seq - 1) +
               " never reached this relay: is another mqdr running mirror " + options_.mirror +
               "?); reading again from what the target holds";
      return;
    }
    next_delivery_ = std::max(next_delivery_, meta->consumer_seq + 1);
    if (meta->stream_seq <= highest_read_) return;  // redelivery of one in flight
    highest_read_ = meta->stream_seq;
    Record r = to_record(msg, *meta);
    if (!options_.skip_origin.empty()) {
      for (const auto& h : r.headers) {
        if (h.key == kOriginHeader && h.value == options_.skip_origin) {
          ++skipped_total_;
          skipped_seq_ = meta->stream_seq;
          skipped_reply_ = r.source_reply;
          if (uncommitted_.empty()) (void)ack_skipped();
          return;
        }
      }
    }
    uncommitted_.emplace_back(meta->stream_seq, meta->timestamp_ns);
    out.push_back(std::move(r));
  });
  if (!stolen.empty()) return Status::retry(stolen);  // the worker logs it
  return st;
}

// Acks the newest skipped message when nothing read before it waits for the target (AckAll
// covers everything up to it). A failed ack is retried at the next commit.
Status StreamSource::ack_skipped() {
  if (skipped_seq_ <= last_acked_ || skipped_reply_.empty() || !uncommitted_.empty()) {
    return Status::ok();
  }
  natsStatus s = natsConnection_Publish(conn_, skipped_reply_.c_str(), "+ACK", 4);
  if (s != NATS_OK) return Status::retry("ack on " + options_.stream + ": " + error_text(s));
  last_acked_ = skipped_seq_;
  return Status::ok();
}

Status StreamSource::commit(std::span<const Record> confirmed) {
  if (confirmed.empty()) return Status::ok();
  const Record& last = confirmed.back();
  const auto seq = static_cast<std::uint64_t>(last.position);
  while (!uncommitted_.empty() && uncommitted_.front().first <= seq) uncommitted_.pop_front();
  if (seq <= last_acked_) return ack_skipped();
  if (last.source_reply.empty()) return Status::fatal("record without an ack subject");
  natsStatus s = natsConnection_Publish(conn_, last.source_reply.c_str(), "+ACK", 4);
  if (s != NATS_OK) {
    // Not acked now: the target has the records; a later commit acks them all (AckAll), and
    // after a restart the target's last relayed sequence positions the consumer.
    return Status::retry("ack on " + options_.stream + ": " + error_text(s));
  }
  last_acked_ = seq;
  return ack_skipped();
}

Lag StreamSource::lag() {
  Lag lag;
  if (!js_) return lag;
  jsConsumerInfo* ci = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 1000;
  natsStatus s = js_GetConsumerInfo(&ci, js_.get(), options_.stream.c_str(),
                                    options_.consumer.c_str(), &jo, &code);
  if (s != NATS_OK) return lag;
  Ptr<jsConsumerInfo> info(ci);
  lag.records = static_cast<std::int64_t>(info->NumPending) + info->NumAckPending;
  if (lag.records == 0) {
    lag.seconds = 0;
  } else if (!uncommitted_.empty()) {
    lag.seconds = std::max(0.0, static_cast<double>(now_ns() - uncommitted_.front().second) / 1e9);
  } else {
    natsMsg* raw = nullptr;
    s = js_GetMsg(&raw, js_.get(), options_.stream.c_str(), info->AckFloor.Stream + 1, &jo, &code);
    if (s == NATS_OK) {
      Ptr<natsMsg> msg(raw);
      lag.seconds = std::max(0.0, static_cast<double>(now_ns() - natsMsg_GetTime(msg.get())) / 1e9);
    }
  }
  return lag;
}

void StreamSource::close() {
  // Unsubscribing would delete nothing (the consumer is bound, not created by the
  // subscription), but destroy alone is enough and keeps the durable as it is.
  puller_.close();
  js_.reset();
}

}  // namespace mqdr::nats
