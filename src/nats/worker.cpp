#include "nats/worker.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>

#include <spdlog/spdlog.h>

#include "mqdr/pipeline.hpp"
#include "nats/positions.hpp"
#include "nats/sink.hpp"
#include "nats/source.hpp"

namespace mqdr::nats {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Sleeps up to `d`, returning early (false) when stop is requested.
bool sleep_for(std::stop_token stop, Duration d) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  return !cv.wait_for(lock, stop, d, [] { return false; }) && !stop.stop_requested();
}

}  // namespace

struct MirrorWorker::Runner {
  explicit Runner(std::string s, const std::string& mirror)
      : stream(std::move(s)), stats(mirror + "/" + stream, "nats") {}
  std::string stream;
  WorkerStats stats;
  std::mutex mu;
  std::string state = "starting";
  std::string error;
  StreamSink* sink = nullptr;  // valid while set, under mu
  std::uint64_t seen_records = 0;
  std::uint64_t seen_bytes = 0;
  std::uint64_t resume_after = 0;
  std::jthread thread;

  void set(std::string st, std::string err) {
    std::lock_guard lock(mu);
    state = std::move(st);
    error = std::move(err);
  }
};

MirrorWorker::MirrorWorker(MirrorContext ctx)
    : ctx_(std::move(ctx)), selector_(ctx_.mirror.nats.streams, ctx_.config && carries_drill_markers(*ctx_.config, ctx_.mirror)) {}

MirrorWorker::~MirrorWorker() {
  for (auto& [name, r] : runners_) r->thread.request_stop();
  runners_.clear();  // joins
}

void MirrorWorker::check_restart_gap(const std::string& stream, std::int64_t duplicates_ns) {
  if (last_heartbeat_ns_ <= 0 || duplicates_ns <= 0) return;
  const std::int64_t gap = now_ns() - last_heartbeat_ns_;
  if (gap > duplicates_ns) {
    spdlog::warn(
        "mirror={} stream={} mqdr was stopped for {:.0f}s, longer than the target stream's "
        "duplicate window ({:.0f}s): Nats-Msg-Id no longer covers messages published before the "
        "stop; the relay resumes after the target's last relayed sequence instead. Raise the "
        "source stream's duplicate_window if restarts can take longer",
        ctx_.mirror.name, stream, gap / 1e9, duplicates_ns / 1e9);
  }
}

Status MirrorWorker::run(std::stop_token stop) {
  const auto& m = ctx_.mirror;
  auto* stats = ctx_.stats.get();
  if (stats != nullptr) stats->set_state("starting");

  // Previous run's last heartbeat: how long mqdr was away, checked against duplicate windows.
  const auto heartbeat_file = ctx_.state_dir / "nats-heartbeat";
  {
    std::ifstream in(heartbeat_file);
    in >> last_heartbeat_ns_;
  }

  Duration backoff = 500ms;
  while (!stop.stop_requested()) {
    Status st = source_.connect(ctx_.source, "mqdr/" + m.name + "/control", 5s);
    if (st.is_ok()) st = target_.connect(ctx_.target, "mqdr/" + m.name + "/control", 5s);
    if (st.is_ok()) st = source_.jetstream(ctx_.source, 5s, source_js_);
    if (st.is_ok()) st = target_.jetstream(ctx_.target, 5s, target_js_);
    if (st.is_ok() && m.nats.mode == NatsMode::native) {
      jsAccountInfo* ai = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      natsStatus s = js_GetAccountInfo(&ai, source_js_.get(), nullptr, &code);
      if (s != NATS_OK) {
        st = Status::retry("JetStream account info of source " + ctx_.source.name + ": " + error_text(s, code));
      } else {
        Ptr<jsAccountInfo> info(ai);
        std::string domain = ctx_.source.nats.domain;
        if (domain.empty() && info->Domain != nullptr) domain = info->Domain;
        if (!ctx_.source.nats.api_prefix.empty()) {
          source_api_prefix_ = ctx_.source.nats.api_prefix;
        } else if (!domain.empty()) {
          source_api_prefix_ = api_prefix_for_domain(domain);
        } else {
          st = Status::fatal("native mode needs the source cluster " + ctx_.source.name +
                             " to have a JetStream domain (or set its api_prefix)");
        }
      }
    }
    if (st.is_ok()) break;
    source_.close();
    target_.close();
    spdlog::warn("mirror={} {}", m.name, st.message());
    if (stats != nullptr) {
      stats->set_state("backoff");
      stats->set_error(st.message());
    }
    if (!sleep_for(stop, st.is_fatal() ? std::max<Duration>(m.nats.refresh_interval, 5s) : backoff)) break;
    backoff = std::min<Duration>(backoff * 2, 30s);
  }
  if (stop.stop_requested()) {
    if (stats != nullptr) stats->set_state("stopped");
    return Status::ok();
  }
  spdlog::info("mirror={} nats {} mirror from {} to {} started", m.name,
               m.nats.mode == NatsMode::relay ? "relay" : "native", ctx_.source.name, ctx_.target.name);
  if (stats != nullptr) {
    stats->set_state("running");
    stats->clear_error();
  }

  auto next_refresh = Clock::now();
  auto next_consumers = Clock::now() + m.nats.consumer_sync_interval;
  auto next_heartbeat = Clock::now();
  while (!stop.stop_requested()) {
    const auto now = Clock::now();
    if (now >= next_refresh) {
      refresh(stop);
      next_refresh = Clock::now() + m.nats.refresh_interval;
    }
    if (now >= next_consumers && !m.nats.consumers.empty()) {
      sync_consumers();
      next_consumers = Clock::now() + m.nats.consumer_sync_interval;
    }
    if (now >= next_heartbeat) {
      std::ofstream out(heartbeat_file, std::ios::trunc);
      out << now_ns() << "\n";
      next_heartbeat = now + 2s;
    }
    publish_stats();
    sleep_for(stop, 500ms);
  }

  for (auto& [name, r] : runners_) r->thread.request_stop();
  for (auto& [name, r] : runners_) {
    if (r->thread.joinable()) r->thread.join();
  }
  publish_stats();
  {
    std::ofstream out(heartbeat_file, std::ios::trunc);
    out << now_ns() << "\n";
  }
  if (stats != nullptr) stats->set_state("stopped");
  spdlog::info("mirror={} stopped", m.name);
  return Status::ok();
}

void MirrorWorker::refresh(std::stop_token stop) {
  const auto& m = ctx_.mirror;
  std::string error;
  auto names = list_streams(source_js_.get(), error);
  if (!names) {
    spdlog::warn("mirror={} cluster={} {}", m.name, ctx_.source.name, error);
    stream_errors_["*"] = "source " + ctx_.source.name + ": " + error;
    return;
  }
  stream_errors_.erase("*");
  std::vector<std::string> selected;
  for (const auto& n : *names) {
    if (selector_.matches(n) && n.rfind("KV_", 0) != 0 && n.rfind("OBJ_", 0) != 0) selected.push_back(n);
  }
  // Literal names that do not exist are reported (a regex matching nothing is not an error).
  for (const auto& p : m.nats.streams) {
    const bool literal = p.find_first_of(".*+?()[]{}|^$\\") == std::string::npos;
    if (literal && std::find(selected.begin(), selected.end(), p) == selected.end()) {
      const std::string msg = "stream " + p + " does not exist on source cluster " + ctx_.source.name;
      if (stream_errors_[p] != msg) spdlog::error("mirror={} {}", m.name, msg);
      stream_errors_[p] = msg;
    } else if (literal && stream_errors_.count(p) != 0 &&
               stream_errors_[p].find("does not exist") != std::string::npos) {
      stream_errors_.erase(p);
    }
  }
  for (const auto& n : selected) {
    if (stop.stop_requested()) return;
    if (m.nats.mode == NatsMode::native) {
      sync_native(n);
      continue;
    }
    // Relay: config sync on every refresh (the runner also syncs before it starts).
    StreamSpec source_spec, desired;
    SyncResult result;
    double avg = 0;
    Status st = read_stream(source_js_.get(), n, ctx_.source.name, source_spec, &avg);
    if (st.is_ok()) st = target_spec(source_spec, NatsMode::relay, "", desired, avg);
    if (st.is_ok()) st = apply_stream(target_js_.get(), desired, result);
    if (!st.is_ok()) {
      if (stream_errors_[n] != st.message()) spdlog::error("mirror={} stream={} {}", m.name, n, st.message());
      stream_errors_[n] = st.message();
      if (st.is_fatal()) continue;  // nothing to relay into; retried at the next refresh
    } else {
      stream_errors_.erase(n);
      if (result.created || result.updated) {
        spdlog::info("mirror={} stream={} target stream {} on {}", m.name, n,
                     result.created ? "created" : "updated to the source config", ctx_.target.name);
      }
    }
    if (runners_.count(n) == 0) start_runner(n);
  }
  // Streams that disappeared from the source (or no longer match): stop their runners.
  for (auto it = runners_.begin(); it != runners_.end();) {
    if (std::find(selected.begin(), selected.end(), it->first) == selected.end()) {
      spdlog::info("mirror={} stream={} no longer on the source or selected; relay stopped", m.name, it->first);
      it->second->thread.request_stop();
      it = runners_.erase(it);
    } else {
      ++it;
    }
  }
}

void MirrorWorker::start_runner(const std::string& stream) {
  auto r = std::make_unique<Runner>(stream, ctx_.mirror.name);
  Runner* raw = r.get();
  r->thread = std::jthread([this, raw](std::stop_token st) { run_stream(*raw, st); });
  runners_.emplace(stream, std::move(r));
}

void MirrorWorker::run_stream(Runner& r, std::stop_token stop) {
  const auto& m = ctx_.mirror;
  Duration backoff = 500ms;
  while (!stop.stop_requested()) {
    Status st;
    try {
      st = run_stream_once(r, stop);
    } catch (const std::exception& e) {
      st = Status::retry(std::string("unexpected error: ") + e.what());
    }
    if (stop.stop_requested()) break;
    if (st.is_ok()) {
      backoff = 500ms;
      continue;
    }
    r.stats.set_error(st.message());
    if (st.is_fatal()) {
      spdlog::error("mirror={} stream={} {}; retrying in {}s", m.name, r.stream, st.message(),
                    std::max<Duration>(m.nats.refresh_interval, 5s).count() / 1000);
      r.set("failed", st.message());
      sleep_for(stop, std::max<Duration>(m.nats.refresh_interval, 5s));
    } else {
      spdlog::warn("mirror={} stream={} {}; retrying in {}ms", m.name, r.stream, st.message(), backoff.count());
      r.set("backoff", st.message());
      sleep_for(stop, backoff);
      backoff = std::min<Duration>(backoff * 2, 30s);
    }
  }
  r.set("stopped", "");
}

Status MirrorWorker::run_stream_once(Runner& r, std::stop_token stop) {
  const auto& m = ctx_.mirror;
  Connection src, dst;
  Status st = src.connect(ctx_.source, "mqdr/" + m.name + "/" + r.stream, 5s);
  if (!st.is_ok()) return st;
  st = dst.connect(ctx_.target, "mqdr/" + m.name + "/" + r.stream, 5s);
  if (!st.is_ok()) return st;
  Ptr<jsCtx> src_js, dst_js;
  if (!(st = src.jetstream(ctx_.source, 5s, src_js)).is_ok()) return st;
  if (!(st = dst.jetstream(ctx_.target, 5s, dst_js)).is_ok()) return st;

  // The target stream first: publishes must land in it.
  StreamSpec source_spec, desired;
  SyncResult result;
  double avg = 0;
  if (!(st = read_stream(src_js.get(), r.stream, ctx_.source.name, source_spec, &avg)).is_ok()) return st;
  if (!(st = target_spec(source_spec, NatsMode::relay, "", desired, avg)).is_ok()) return st;
  if (!(st = apply_stream(dst_js.get(), desired, result)).is_ok()) return st;
  if (desired.retention == js_InterestPolicy &&
      !(st = ensure_interest_holder(dst_js.get(), r.stream, consumer_name_for(m.name))).is_ok()) {
    return st;
  }
  check_restart_gap(r.stream, result.duplicates_ns);

  std::string error;
  auto resume = last_relayed_sequence(dst_js.get(), r.stream, r.stream, error);
  if (!resume) return Status::retry(error);

  StreamSourceOptions so;
  so.mirror = m.name;
  so.stream = r.stream;
  so.consumer = consumer_name_for(m.name);
  so.batch = std::max(1, m.nats.batch);
  so.max_ack_pending = std::max(1, m.nats.max_inflight) + 4 * so.batch;
  so.resume_after = *resume;
  so.skip_origin = ctx_.target.name;
  StreamSource source(src.get(), ctx_.source, so);

  StreamSinkOptions ko;
  ko.mirror = m.name;
  ko.source_stream = r.stream;
  ko.target_stream = r.stream;
  ko.origin = ctx_.source.name;
  StreamSink sink(dst.get(), ctx_.target, ko);

  if (!(st = source.open()).is_ok()) return st;
  if (!(st = sink.open()).is_ok()) return st;
  {
    std::lock_guard lock(r.mu);
    r.sink = &sink;
    r.resume_after = *resume;
  }
  r.set("running", "");
  r.stats.clear_error();

  PipelineOptions po;
  po.batch_max = static_cast<std::size_t>(so.batch);
  po.max_inflight_records = static_cast<std::size_t>(std::max(1, m.nats.max_inflight));
  po.read_wait = 100ms;
  po.poll_wait = 50ms;
  po.drain_timeout = 10s;
  Pipeline pipeline(source, sink, po, &r.stats);
  st = pipeline.run(stop);
  {
    std::lock_guard lock(r.mu);
    r.sink = nullptr;
  }
  sink.close();
  source.close();
  return st;
}

void MirrorWorker::sync_native(const std::string& stream) {
  const auto& m = ctx_.mirror;
  StreamSpec source_spec, desired;
  SyncResult result;
  Status st = read_stream(source_js_.get(), stream, ctx_.source.name, source_spec);
  if (st.is_ok()) st = target_spec(source_spec, NatsMode::native, source_api_prefix_, desired);
  if (st.is_ok()) st = apply_stream(target_js_.get(), desired, result);
  if (st.is_ok() && desired.retention == js_InterestPolicy) {
    st = ensure_interest_holder(target_js_.get(), stream, consumer_name_for(m.name));
  }
  if (!st.is_ok()) {
    if (stream_errors_[stream] != st.message()) spdlog::error("mirror={} stream={} {}", m.name, stream, st.message());
    stream_errors_[stream] = st.message();
    return;
  }
  stream_errors_.erase(stream);
  if (result.created || result.updated) {
    spdlog::info("mirror={} stream={} native target stream {} on {} (sources {} through {})", m.name,
                 stream, result.created ? "created" : "updated", ctx_.target.name, stream, source_api_prefix_);
  }
  // Subjects for promotion, kept where promote() finds them even when the source is down.
  save_native_subjects(ctx_.state_dir, stream, source_spec.subjects);
  native_[stream] = nlohmann::json::object();
}

void MirrorWorker::sync_consumers() {
  const auto& m = ctx_.mirror;
  std::vector<std::string> streams;
  for (const auto& [name, r] : runners_) streams.push_back(name);
  for (const auto& [name, j] : native_) streams.push_back(name);
  ConsumerSync sync(source_js_.get(), target_js_.get(), m.nats.consumers, consumer_name_for(m.name));
  for (const auto& s : streams) {
    std::string err = sync.sync_stream(s, m.nats.mode == NatsMode::native);
    if (!err.empty()) {
      spdlog::warn("mirror={} stream={} consumer positions: {}", m.name, s, err);
      stream_errors_["consumers:" + s] = err;
    } else {
      stream_errors_.erase("consumers:" + s);
    }
  }
}

void MirrorWorker::publish_stats() {
  auto* stats = ctx_.stats.get();
  if (stats == nullptr) return;
  nlohmann::json detail = nlohmann::json::object();
  nlohmann::json streams = nlohmann::json::object();
  std::int64_t lag_records = 0;
  double lag_seconds = 0;
  bool lag_known = true;
  std::string first_error;
  for (auto& [name, r] : runners_) {
    auto snap = r->stats.snapshot();
    if (snap.records_total > r->seen_records) {
      stats->add_records(snap.records_total - r->seen_records, snap.bytes_total - r->seen_bytes);
      r->seen_records = snap.records_total;
      r->seen_bytes = snap.bytes_total;
    }
    nlohmann::json s;
    std::string problem;
    {
      std::lock_guard lock(r->mu);
      s["state"] = r->state;
      if (!r->error.empty()) problem = r->error;
      if (r->sink != nullptr) {
        std::string p = r->sink->problem();
        if (!p.empty()) problem = p;
      }
    }
    s["records_total"] = snap.records_total;
    s["bytes_total"] = snap.bytes_total;
    s["lag_records"] = snap.lag_records;
    s["lag_seconds"] = snap.lag_seconds;
    s["errors_total"] = snap.errors_total;
    s["last_error"] = problem;
    if (!problem.empty() && first_error.empty()) first_error = "stream " + name + ": " + problem;
    if (snap.lag_records < 0) {
      lag_known = false;
    } else {
      lag_records += snap.lag_records;
      lag_seconds = std::max(lag_seconds, snap.lag_seconds);
    }
    streams[name] = std::move(s);
  }
  // Native mode: lag from the target stream's source info.
  if (ctx_.mirror.nats.mode == NatsMode::native && target_js_) {
    std::uint64_t last_total = 0;
    for (auto& [name, j] : native_) {
      jsStreamInfo* si = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      jsOptions jo;
      jsOptions_Init(&jo);
      jo.Wait = 1000;
      nlohmann::json s;
      if (js_GetStreamInfo(&si, target_js_.get(), name.c_str(), &jo, &code) == NATS_OK) {
        Ptr<jsStreamInfo> info(si);
        last_total += info->State.LastSeq;
        s["state"] = "running";
        s["records_total"] = info->State.Msgs;
        s["bytes_total"] = info->State.Bytes;
        if (info->SourcesLen > 0 && info->Sources[0] != nullptr) {
          const auto lag = static_cast<std::int64_t>(info->Sources[0]->Lag);
          s["lag_records"] = lag;
          s["source_active_ms"] = info->Sources[0]->Active / 1000000;
          lag_records += lag;
          double secs = 0;
          if (lag > 0) {
            // Age of the oldest message the target does not have yet.
            jsStreamInfo* ssi = nullptr;
            if (js_GetStreamInfo(&ssi, source_js_.get(), name.c_str(), &jo, &code) == NATS_OK) {
              Ptr<jsStreamInfo> sinfo(ssi);
              const std::uint64_t first_missing = sinfo->State.LastSeq - static_cast<std::uint64_t>(lag) + 1;
              natsMsg* raw = nullptr;
              if (js_GetMsg(&raw, source_js_.get(), name.c_str(), first_missing, &jo, &code) == NATS_OK) {
                Ptr<natsMsg> msg(raw);
                secs = std::max(0.0, (now_ns() - natsMsg_GetTime(msg.get())) / 1e9);
              }
            }
          }
          s["lag_seconds"] = secs;
          lag_seconds = std::max(lag_seconds, secs);
        } else {
          s["lag_records"] = -1;
          lag_known = false;
        }
      } else {
        s["state"] = "unreachable";
        lag_known = false;
      }
      streams[name] = std::move(s);
    }
    if (native_seeded_ && last_total > native_last_seq_total_) {
      stats->add_records(last_total - native_last_seq_total_, 0);
    }
    native_last_seq_total_ = last_total;
    native_seeded_ = true;
  }
  for (const auto& [key, err] : stream_errors_) {
    if (first_error.empty()) first_error = err;
    if (key.rfind("consumers:", 0) != 0 && !streams.contains(key)) {
      streams[key] = {{"state", "failed"}, {"last_error", err}};
    }
  }
  detail["mode"] = ctx_.mirror.nats.mode == NatsMode::relay ? "relay" : "native";
  detail["streams"] = std::move(streams);
  stats->set_detail(std::move(detail));
  if (lag_known) {
    stats->set_lag(lag_records, lag_seconds);
  } else {
    stats->set_lag(-1, -1);
  }
  if (first_error.empty()) {
    stats->clear_error();
  } else if (stats->snapshot().last_error != first_error) {
    stats->set_error(first_error);
  }
}

}  // namespace mqdr::nats
