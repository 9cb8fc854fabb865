#include "nats/sink.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace mqdr::nats {

using Clock = std::chrono::steady_clock;

namespace {

bool reserved_key(std::string_view key) {
  return key == kMsgIdHeader || key.rfind("Nats-Expected-", 0) == 0;
}

const std::string* attribute(const Record& r, std::string_view name) {
  for (const auto& a : r.attributes) {
    if (a.first == name) return &a.second;
  }
  return nullptr;
}

// The target can never store this record, whatever we do.
bool permanent(int code) {
  return code == JSStreamMessageExceedsMaximumErr || code == 10097 /* header too large */;
}

}  // namespace

std::string relay_msg_id(const std::string& source_stream, std::uint64_t seq) {
  return source_stream + ":" + std::to_string(seq);
}

std::string relay_header_lines(const Record& r, const std::string& source_stream,
                               const std::string& origin) {
  std::string out;
  bool used_raw = false;
  if (const std::string* raw = attribute(r, kRawHeadersAttribute)) {
    // Exact bytes, unless a key needs renaming (then the parsed headers are re-encoded).
    bool clean = raw->rfind("NATS/1.0\r\n", 0) == 0 && raw->size() >= 12 &&
                 raw->compare(raw->size() - 4, 4, "\r\n\r\n") == 0;
    for (const auto& h : r.headers) clean = clean && !reserved_key(h.key);
    if (clean) {
      out.assign(*raw, 0, raw->size() - 2);
      used_raw = true;
    }
  }
  if (!used_raw) {
    out = "NATS/1.0\r\n";
    for (const auto& h : r.headers) {
      if (reserved_key(h.key)) out.append(kOrigHeaderPrefix);
      out.append(h.key);
      out.append(": ");
      if (h.value) out.append(*h.value);
      out.append("\r\n");
    }
  }
  const auto seq = static_cast<std::uint64_t>(r.position);
  std::string time_ns;
  if (const std::string* t = attribute(r, kTimeNsAttribute)) {
    time_ns = *t;
  } else {
    time_ns = std::to_string(r.timestamp_ms * 1000000);
  }
  out.append(kMsgIdHeader).append(": ").append(relay_msg_id(source_stream, seq)).append("\r\n");
  out.append(kSourceStreamHeader).append(": ").append(source_stream).append("\r\n");
  out.append(kSourceSeqHeader).append(": ").append(std::to_string(seq)).append("\r\n");
  out.append(kSourceTimeHeader).append(": ").append(time_ns).append("\r\n");
  const bool has_origin = std::any_of(r.headers.begin(), r.headers.end(),
                                      [](const Header& h) { return h.key == kOriginHeader; });
  if (!origin.empty() && !has_origin) out.append(kOriginHeader).append(": ").append(origin).append("\r\n");
  return out;
}

StreamSink::StreamSink(natsConnection* conn, ClusterConfig cluster, StreamSinkOptions options)
    : conn_(conn), cluster_(std::move(cluster)), options_(std::move(options)) {}

StreamSink::~StreamSink() { close(); }

Status StreamSink::open() {
  jsOptions jo;
  jsOptions_Init(&jo);
  if (!cluster_.nats.api_prefix.empty()) {
    jo.Prefix = cluster_.nats.api_prefix.c_str();
  } else if (!cluster_.nats.domain.empty()) {
    jo.Domain = cluster_.nats.domain.c_str();
  }
  jo.Wait = options_.api_wait.count();
  jsCtx* api = nullptr;
  natsStatus s = natsConnection_JetStream(&api, conn_, &jo);
  if (s != NATS_OK) return Status::fatal("cannot create JetStream context: " + error_text(s));
  api_.reset(api);
  jo.PublishAsync.AckHandler = &StreamSink::on_ack;
  jo.PublishAsync.AckHandlerClosure = this;
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, conn_, &jo);
  if (s != NATS_OK) return Status::fatal("cannot create JetStream context: " + error_text(s));
  js_.reset(js);
  return Status::ok();
}

void StreamSink::on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* self = static_cast<StreamSink*>(closure);
  Event ev;
  ev.msg = msg;
  ev.ok = pa != nullptr && pae == nullptr;
  if (pae != nullptr) {
    ev.err = pae->Err;
    ev.code = static_cast<int>(pae->ErrCode);
    ev.text = pae->ErrText != nullptr ? pae->ErrText : natsStatus_GetText(pae->Err);
  }
  {
    std::lock_guard lock(self->mu_);
    self->events_.push_back(std::move(ev));
  }
  self->cv_.notify_one();
}

Status StreamSink::write(std::span<const Record> records, std::uint64_t first_id) {
  if (!js_) return Status::retry("target stream " + options_.target_stream + " is not open");
  if (entries_.empty()) front_id_ = first_id;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    Entry e;
    e.id = first_id + i;
    e.seq = static_cast<std::uint64_t>(r.position);
    e.subject = r.key.value_or("");
    e.header_lines = relay_header_lines(r, options_.source_stream, options_.origin);
    if (r.value) e.payload = *r.value;
    e.msg_id = relay_msg_id(options_.source_stream, e.seq);
    entries_.push_back(std::move(e));
    if (mode_ == Mode::normal) {
      Status st = send(entries_.back());
      if (!st.is_ok()) return st;
    }
  }
  return Status::ok();
}

Status StreamSink::send(Entry& e) {
  std::string block = e.header_lines;
  if (!prev_msg_id_.empty()) {
    block.append(kExpectedLastMsgIdHeader).append(": ").append(prev_msg_id_).append("\r\n");
  }
  block.append("\r\n");
  Ptr<natsMsg> msg;
  Status st = make_raw_message(e.subject, block, e.payload, msg);
  if (!st.is_ok()) return st;
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = options_.publish_timeout.count();
  natsMsg* raw = msg.release();
  sent_[raw] = e.id;
  natsStatus s = js_PublishMsgAsync(js_.get(), &raw, &po);
  if (s != NATS_OK) {
    // Still ours: not sent.
    sent_.erase(raw);
    natsMsg_Destroy(raw);
    fail(e, "publish: " + error_text(s));
    return Status::ok();
  }
  e.state = State::sent;
  published_any_ = true;
  prev_msg_id_ = e.msg_id;
  return Status::ok();
}

void StreamSink::fail(Entry& e, const std::string& why) {
  e.state = State::failed;
  if (mode_ != Mode::recovering) {
    spdlog::warn("mirror={} stream={} target {} did not store sequence {}: {}; holding new "
                 "publishes and retrying in order",
                 options_.mirror, options_.source_stream, options_.target_stream, e.seq, why);
    mode_ = Mode::recovering;
  }
  set_problem("target stream " + options_.target_stream + " on " + cluster_.name + ": " + why);
}

Status StreamSink::poll(Duration wait, const std::function<void(std::uint64_t id)>& confirmed) {
  if (!early_confirms_.empty()) {
    for (auto id : early_confirms_) confirmed(id);
    early_confirms_.clear();
    wait = Duration(0);
  }
  return process(wait, confirmed);
}

Status StreamSink::process(Duration wait, const std::function<void(std::uint64_t)>& confirmed) {
  std::vector<Event> events;
  {
    std::unique_lock lock(mu_);
    if (events_.empty() && wait.count() > 0) {
      // In recovery with nothing outstanding, wake up when the retry is due.
      auto until = Clock::now() + wait;
      if (mode_ == Mode::recovering && sent_.empty()) until = std::min(until, std::max(retry_at_, Clock::now()));
      cv_.wait_until(lock, until, [&] { return !events_.empty(); });
    }
    events.swap(events_);
  }
  bool stored_any = false;
  for (auto& ev : events) {
    auto it = sent_.find(ev.msg);
    natsMsg_Destroy(ev.msg);
    if (it == sent_.end()) continue;
    const std::uint64_t id = it->second;
    sent_.erase(it);
    if (id < front_id_ || id - front_id_ >= entries_.size()) continue;
    Entry& e = entries_[id - front_id_];
    if (ev.ok) {
      e.state = State::done;
      confirmed(id);
      stored_any = true;
      if (mode_ == Mode::probing && id == probe_id_) resume_after_probe();
      continue;
    }
    if (permanent(ev.code)) {
      fatal_ = "target stream " + options_.target_stream + " rejects " + options_.source_stream +
               " sequence " + std::to_string(e.seq) + " for good: " + ev.text;
    }
    if (ev.code == JSStreamWrongLastMsgIDErr) {
      // Its predecessor is missing on the target; that failure is reported on its own.
      e.state = State::failed;
      if (mode_ != Mode::recovering) fail(e, "an earlier message is missing (" + ev.text + ")");
    } else {
      fail(e, ev.text + (ev.code != 0 ? " (JetStream error " + std::to_string(ev.code) + ")" : ""));
    }
  }
  if (stored_any && mode_ == Mode::normal) {
    backoff_ = Duration(100);
    set_problem("");
  }
  pop_done();
  if (!fatal_.empty()) return Status::fatal(fatal_);
  if (mode_ == Mode::recovering && sent_.empty() && Clock::now() >= retry_at_) recover(confirmed);
  return Status::ok();
}

void StreamSink::recover(const std::function<void(std::uint64_t)>& confirmed) {
  retry_at_ = Clock::now() + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  std::string error;
  auto last = last_relayed_sequence(api_.get(), options_.target_stream, options_.source_stream, error);
  if (!last) {
    set_problem("target stream " + options_.target_stream + " on " + cluster_.name + ": " + error);
    return;
  }
  // Everything up to the target's last relayed sequence is there (stored in order).
  for (auto& e : entries_) {
    if (e.state != State::done && e.seq <= *last) {
      e.state = State::done;
      confirmed(e.id);
    }
  }
  pop_done();
  prev_msg_id_.clear();
  mode_ = Mode::normal;
  if (entries_.empty()) return;
  // Probe with the first missing record alone; the rest follow once it is stored.
  for (auto& e : entries_) {
    if (e.state == State::done) continue;
    probe_id_ = e.id;
    mode_ = Mode::probing;
    Status st = send(e);
    if (!st.is_ok() || e.state == State::failed) {
      mode_ = Mode::recovering;
    }
    break;
  }
}

void StreamSink::resume_after_probe() {
  mode_ = Mode::normal;
  spdlog::info("mirror={} stream={} target {} stores again; resending in order",
               options_.mirror, options_.source_stream, options_.target_stream);
  for (auto& e : entries_) {
    if (e.state == State::done || e.state == State::sent) continue;
    (void)send(e);
    if (mode_ != Mode::normal) break;
  }
}

void StreamSink::pop_done() {
  while (!entries_.empty() && entries_.front().state == State::done) {
    entries_.pop_front();
    ++front_id_;
  }
}

Status StreamSink::flush(Duration deadline) {
  const auto until = Clock::now() + deadline;
  auto keep = [this](std::uint64_t id) { early_confirms_.push_back(id); };
  while (!entries_.empty()) {
    const auto now = Clock::now();
    if (now >= until) break;
    Status st = process(std::min<Duration>(Duration(50), std::chrono::duration_cast<Duration>(until - now)), keep);
    if (!st.is_ok()) return st;
  }
  if (!entries_.empty()) {
    return Status::retry(std::to_string(entries_.size()) + " messages not yet stored by target stream " +
                         options_.target_stream);
  }
  return Status::ok();
}

void StreamSink::close() {
  if (js_ && published_any_) {
    // Take back what is still in flight so that no PubAck handler runs after this object is
    // gone, then wait for a handler that may be running right now.
    natsMsgList pending{nullptr, 0};
    if (js_PublishAsyncGetPendingList(&pending, js_.get()) == NATS_OK) natsMsgList_Destroy(&pending);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 2000;
    (void)js_PublishAsyncComplete(js_.get(), &po);
  }
  js_.reset();
  api_.reset();
  std::lock_guard lock(mu_);
  for (auto& ev : events_) natsMsg_Destroy(ev.msg);
  events_.clear();
  sent_.clear();
}

std::string StreamSink::problem() const {
  std::lock_guard lock(problem_mu_);
  return problem_;
}

void StreamSink::set_problem(std::string text) {
  std::lock_guard lock(problem_mu_);
  problem_ = std::move(text);
}

}  // namespace mqdr::nats
