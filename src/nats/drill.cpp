#include "nats/drill.hpp"

#include <chrono>
#include <map>
#include <thread>

#include "nats/client.hpp"
#include "nats/reader.hpp"

namespace mqdr::nats {

namespace {
using Clock = std::chrono::steady_clock;

std::int64_t left_ms(Clock::time_point until) {
  return std::max<std::int64_t>(
      1, std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count());
}

std::string subject_of(const std::string& id) { return "mqdr.drill." + id; }

bool stream_exists(jsCtx* js, std::string& error) {
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js, kDrillStream, nullptr, &code);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    return true;
  }
  error = s == NATS_NOT_FOUND ? "not there yet" : error_text(s, code);
  return false;
}
}  // namespace

Status drill_prepare(const DrillSide& source, const DrillSide& target, const std::string& mirror,
                     Duration deadline) {
  const auto until = Clock::now() + deadline;
  std::string error;
  if (!stream_exists(source.js, error)) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = kDrillStream;
    const char* subjects[] = {kDrillSubjects};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.MaxMsgs = 10000;                               // a hundred drills
    cfg.MaxAge = 7LL * 24 * 3600 * 1000 * 1000 * 1000;  // a week, in ns
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_AddStream(&si, source.js, &cfg, nullptr, &code);
    if (s != NATS_OK && code != JSStreamNameExistErr) {
      return Status::retry("cannot create stream " + std::string(kDrillStream) + " on " +
                           source.cluster->name + ": " + error_text(s, code));
    }
    if (si != nullptr) jsStreamInfo_Destroy(si);
  }
  while (Clock::now() < until) {
    if (stream_exists(target.js, error)) return Status::ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return Status::retry("mirror " + mirror + " did not create stream " + kDrillStream + " on " +
                       target.cluster->name + " in time (" + error +
                       "; it picks up new streams every refresh_interval)");
}

Status drill_write(const DrillSide& source, DrillMarkers& markers, int count, int consume,
                   Duration deadline) {
  const auto until = Clock::now() + deadline;
  const std::string subject = subject_of(markers.id);
  std::vector<std::uint64_t> seqs;
  for (int n = 0; n < count; ++n) {
    const std::string text = drill_marker(markers.id, n);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = left_ms(until);
    po.ExpectStream = kDrillStream;
    jsPubAck* pa = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_Publish(&pa, source.js, subject.c_str(), text.data(),
                              static_cast<int>(text.size()), &po, &code);
    if (s != NATS_OK) {
      if (seqs.empty()) {
        return Status::retry("publish a drill marker on " + source.cluster->name + ": " +
                             error_text(s, code));
      }
      break;
    }
    seqs.push_back(pa->Sequence);
    jsPubAck_Destroy(pa);
  }
  markers.written = static_cast<int>(seqs.size());
  markers.detail = {{"stream", kDrillStream}, {"subject", subject}, {"first_seq", seqs.front()},
                    {"last_seq", seqs.back()}};
  consume = std::min(consume, markers.written);
  markers.consumed = 0;
  if (consume <= 0) return Status::ok();

  // The drill's durable consumer, new for every drill: it starts at the first marker.
  jsErrCode code = static_cast<jsErrCode>(0);
  js_DeleteConsumer(source.js, kDrillStream, markers.consumer.c_str(), nullptr, &code);
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = markers.consumer.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.DeliverPolicy = js_DeliverByStartSequence;
  cc.OptStartSeq = seqs.front();
  cc.FilterSubject = subject.c_str();
  jsConsumerInfo* ci = nullptr;
  code = static_cast<jsErrCode>(0);
  natsStatus s = js_AddConsumer(&ci, source.js, kDrillStream, &cc, nullptr, &code);
  if (s != NATS_OK) {
    return Status::retry("cannot create the drill consumer " + markers.consumer + " on " +
                         source.cluster->name + ": " + error_text(s, code));
  }
  jsConsumerInfo_Destroy(ci);
  Puller puller;
  if (Status st = puller.open(source.conn, *source.cluster, kDrillStream, markers.consumer, consume);
      !st.is_ok()) {
    return st;
  }
  int acked = 0;
  while (acked < consume && Clock::now() < until) {
    std::vector<std::string> replies;
    Status st = puller.next(static_cast<std::size_t>(consume - acked), Duration(1000), [&](natsMsg* m) {
      const char* data = natsMsg_GetData(m);
      auto n = parse_drill_marker(std::string_view(data == nullptr ? "" : data,
                                                   static_cast<std::size_t>(natsMsg_GetDataLength(m))),
                                  markers.id);
      const char* reply = natsMsg_GetReply(m);
      if (n && *n == acked + static_cast<int>(replies.size()) && reply != nullptr) replies.emplace_back(reply);
    });
    if (!st.is_ok()) return st;
    for (const auto& reply : replies) {
      // An ack sent as a request is confirmed by the server once it is recorded.
      natsMsg* resp = nullptr;
      s = natsConnection_RequestString(&resp, source.conn, reply.c_str(), "+ACK", left_ms(until));
      if (s != NATS_OK) {
        return Status::retry("the drill consumer's ack was not confirmed by " +
                             source.cluster->name + ": " + error_text(s));
      }
      natsMsg_Destroy(resp);
      ++acked;
    }
  }
  puller.close();
  markers.consumed = acked;
  if (acked < consume) {
    return Status::retry("the drill consumer took " + std::to_string(acked) + " of " +
                         std::to_string(consume) + " markers on " + source.cluster->name + " in time");
  }
  markers.detail["consumer_ack_floor"] = seqs[static_cast<std::size_t>(acked - 1)];
  return Status::ok();
}

Status drill_check(const DrillSide& target, const DrillMarkers& markers, DrillCheck& out,
                   Duration deadline) {
  const auto until = Clock::now() + deadline;
  const std::string subject = subject_of(markers.id);
  std::map<int, int> seen;
  {
    StreamReader reader(target.conn, *target.cluster, target.js, kDrillStream);
    if (Status st = reader.open(1); !st.is_ok()) return st;
    for (;;) {
      if (Clock::now() >= until) return Status::retry("reading " + std::string(kDrillStream) + " on " + target.cluster->name + " took too long");
      std::vector<StoredMessage> batch;
      if (Status st = reader.next(batch, 512, Duration(1000)); !st.is_ok()) return st;
      if (batch.empty()) break;
      for (const auto& m : batch) {
        if (m.subject != subject) continue;
        if (auto n = parse_drill_marker(m.payload, markers.id)) ++seen[*n];
      }
    }
  }
  out.on_target = static_cast<int>(seen.size());
  for (int n = 0; n < markers.written; ++n) {
    if (seen.count(n) == 0) out.lost.push_back(n);
  }
  if (markers.consumed == 0) {
    out.resume_unchecked = "no drill consumer on the source";
    return Status::ok();
  }
  // The twin of the drill consumer, kept by the mirror's consumer sync: a client binding to the
  // same durable name on the target continues from there.
  out.resume_checked = true;
  jsConsumerInfo* ci = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&ci, target.js, kDrillStream, markers.consumer.c_str(), nullptr, &code);
  if (s != NATS_OK) {
    for (int n = markers.consumed; n < markers.written; ++n) out.resume_missing.push_back(n);
    out.detail["problem"] = "durable consumer " + markers.consumer + " is not on " +
                            target.cluster->name + ": " + error_text(s, code);
    return Status::ok();
  }
  out.detail["consumer_ack_floor"] = ci->AckFloor.Stream;
  jsConsumerInfo_Destroy(ci);
  Puller puller;
  if (Status st = puller.open(target.conn, *target.cluster, kDrillStream, markers.consumer, 256);
      !st.is_ok()) {
    return st;
  }
  std::map<int, int> got;
  for (;;) {
    if (Clock::now() >= until) break;
    int batch = 0;
    Status st = puller.next(512, Duration(1000), [&](natsMsg* m) {
      ++batch;
      const char* data = natsMsg_GetData(m);
      if (auto n = parse_drill_marker(std::string_view(data == nullptr ? "" : data,
                                                       static_cast<std::size_t>(natsMsg_GetDataLength(m))),
                                      markers.id)) {
        ++got[*n];
      }
    });
    if (!st.is_ok()) return st;
    if (batch == 0) break;
  }
  puller.close();
  count_resume(markers, [&](int n) { return got.count(n) != 0; }, out);
  return Status::ok();
}

}  // namespace mqdr::nats
