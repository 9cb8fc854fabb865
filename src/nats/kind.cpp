// Registration of the nats kind: mirror worker, probe and failover operations.

#include <chrono>

#include <spdlog/spdlog.h>

#include "mqdr/nats.hpp"
#include "nats/client.hpp"
#include "nats/drill.hpp"
#include "nats/positions.hpp"
#include "nats/reader.hpp"
#include "nats/source.hpp"
#include "nats/topology.hpp"
#include "nats/worker.hpp"

namespace mqdr::nats {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Connection + JetStream context kept between checks.
class NatsProbe : public Probe {
 public:
  explicit NatsProbe(ClusterConfig cluster) : cluster_(std::move(cluster)) {}
  ProbeResult check(Duration timeout) override {
    ProbeResult r;
    const auto start = Clock::now();
    if (!conn_ || natsConnection_IsClosed(conn_.get())) {
      js_.reset();
      conn_.close();
      Status st = conn_.connect(cluster_, "mqdr/probe/" + cluster_.name, timeout);
      if (st.is_ok()) st = conn_.jetstream(cluster_, timeout, js_);
      if (!st.is_ok()) {
        r.message = st.message();
        return r;
      }
    }
    if (natsConnection_Status(conn_.get()) != NATS_CONN_STATUS_CONNECTED) {
      r.message = "not connected to " + cluster_.name + " (reconnecting)";
      return r;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    if (!cluster_.nats.api_prefix.empty()) {
      jo.Prefix = cluster_.nats.api_prefix.c_str();
    } else if (!cluster_.nats.domain.empty()) {
      jo.Domain = cluster_.nats.domain.c_str();
    }
    jo.Wait = std::max<std::int64_t>(timeout.count(), 1);
    jsAccountInfo* ai = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_GetAccountInfo(&ai, js_.get(), &jo, &code);
    if (s != NATS_OK) {
      if (code == JSNotEnabledErr || code == JSNotEnabledForAccountErr || s == NATS_NO_RESPONDERS) {
        r.message = "JetStream is not enabled on " + cluster_.name;
      } else {
        r.message = "JetStream account info from " + cluster_.name + ": " + error_text(s, code);
      }
      return r;
    }
    jsAccountInfo_Destroy(ai);
    r.ok = true;
    r.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    return r;
  }

 private:
  ClusterConfig cluster_;
  Connection conn_;
  Ptr<jsCtx> js_;
};

class NatsMirrorOps : public MirrorOps {
 public:
  explicit NatsMirrorOps(MirrorContext ctx) : ctx_(std::move(ctx)), selector_(ctx_.mirror.nats.streams, ctx_.config && carries_drill_markers(*ctx_.config, ctx_.mirror)) {}

  Lag lag(Duration timeout) override {
    Lag total{0, 0};
    if (!open_source(timeout).is_ok() || !open_target(timeout).is_ok()) return {};
    auto streams = selected(source_js_.get());
    if (!streams) return {};
    const bool native = ctx_.mirror.nats.mode == NatsMode::native;
    for (const auto& s : *streams) {
      std::int64_t records = -1;
      std::uint64_t first_missing = 0;
      if (native) {
        jsStreamInfo* si = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        if (js_GetStreamInfo(&si, target_js_.get(), s.c_str(), nullptr, &code) != NATS_OK) return {};
        Ptr<jsStreamInfo> info(si);
        if (info->SourcesLen < 1 || info->Sources[0] == nullptr) return {};
        records = static_cast<std::int64_t>(info->Sources[0]->Lag);
        jsStreamInfo* ssi = nullptr;
        if (records > 0 && js_GetStreamInfo(&ssi, source_js_.get(), s.c_str(), nullptr, &code) == NATS_OK) {
          Ptr<jsStreamInfo> sinfo(ssi);
          first_missing = sinfo->State.LastSeq - static_cast<std::uint64_t>(records) + 1;
        }
      } else {
        jsConsumerInfo* ci = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        const std::string consumer = consumer_name_for(ctx_.mirror.name);
        if (js_GetConsumerInfo(&ci, source_js_.get(), s.c_str(), consumer.c_str(), nullptr, &code) != NATS_OK) {
          return {};
        }
        Ptr<jsConsumerInfo> info(ci);
        records = static_cast<std::int64_t>(info->NumPending) + info->NumAckPending;
        first_missing = info->AckFloor.Stream + 1;
      }
      total.records += records;
      if (records > 0 && first_missing > 0) {
        natsMsg* raw = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        if (js_GetMsg(&raw, source_js_.get(), s.c_str(), first_missing, nullptr, &code) == NATS_OK) {
          Ptr<natsMsg> msg(raw);
          total.seconds = std::max(total.seconds, (now_ns() - natsMsg_GetTime(msg.get())) / 1e9);
        }
      }
    }
    return total;
  }

  Status final_sync(Duration deadline) override {
    Status st = open_source(deadline);
    if (st.is_ok()) st = open_target(deadline);
    if (!st.is_ok()) return st;
    auto streams = selected(source_js_.get());
    if (!streams) return Status::retry("cannot list the source's streams");
    ConsumerSync sync(source_js_.get(), target_js_.get(), ctx_.mirror.nats.consumers,
                      consumer_name_for(ctx_.mirror.name));
    std::string problems;
    for (const auto& s : *streams) {
      std::string err = sync.sync_stream(s, ctx_.mirror.nats.mode == NatsMode::native);
      if (!err.empty()) problems += (problems.empty() ? "" : "; ") + s + ": " + err;
    }
    if (!problems.empty()) return Status::retry("consumer positions: " + problems);
    spdlog::info("mirror={} final consumer sync done ({} twins moved)", ctx_.mirror.name, sync.moved());
    return Status::ok();
  }

  Status promote(Duration deadline) override {
    Status st = open_target(deadline);
    if (!st.is_ok()) return st;
    std::string error;
    auto names = list_streams(target_js_.get(), error);
    if (!names) return Status::retry("target " + ctx_.target.name + ": " + error);
    for (const auto& name : *names) {
      if (!selector_.matches(name)) continue;
      jsStreamInfo* si = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      natsStatus s = js_GetStreamInfo(&si, target_js_.get(), name.c_str(), nullptr, &code);
      if (s != NATS_OK) return Status::retry("target stream " + name + ": " + error_text(s, code));
      Ptr<jsStreamInfo> info(si);
      StreamSpec spec = spec_from(*info->Config);
      // From now on the twins of the source's consumers decide what an interest stream keeps.
      if (spec.retention == js_InterestPolicy &&
          !(st = remove_interest_holder(target_js_.get(), name, consumer_name_for(ctx_.mirror.name))).is_ok()) {
        return st;
      }
      if (ctx_.mirror.nats.mode != NatsMode::native) continue;  // relay targets take publishes
      if (spec.source_name.empty()) continue;  // already promoted
      auto subjects = load_native_subjects(ctx_.state_dir, name);
      if (!subjects) {
        StreamSpec source_spec;
        if (open_source(Duration(1000)).is_ok() &&
            read_stream(source_js_.get(), name, ctx_.source.name, source_spec).is_ok()) {
          subjects = source_spec.subjects;
        }
      }
      if (!subjects) {
        return Status::fatal("no recorded subjects for stream " + name +
                             " (state dir) and the source is unreachable");
      }
      spec.source_name.clear();
      spec.source_api_prefix.clear();
      spec.subjects = *subjects;
      SyncResult result;
      st = apply_stream(target_js_.get(), spec, result, true);
      if (!st.is_ok()) return st;
      spdlog::info("mirror={} stream={} promoted on {}: source removed, subjects {}", ctx_.mirror.name,
                   name, ctx_.target.name, fmt::join(spec.subjects, ","));
    }
    return Status::ok();
  }

  VerifyResult verify(Duration deadline) override {
    VerifyResult result;
    const auto until = Clock::now() + deadline;
    if (!open_source(deadline).is_ok() || !open_target(deadline).is_ok()) {
      result.equal = false;
      result.unchecked.push_back("source or target unreachable");
      return result;
    }
    auto streams = selected(source_js_.get());
    if (!streams) {
      result.equal = false;
      result.unchecked.push_back("cannot list the source's streams");
      return result;
    }
    const bool native = ctx_.mirror.nats.mode == NatsMode::native;
    for (const auto& s : *streams) {
      nlohmann::json d;
      std::string diff, why;
      if (!verify_stream(s, native, until, d, diff, why)) {
        result.unchecked.push_back(s + ": " + why);
        continue;
      }
      result.detail[s] = d;
      if (!diff.empty() && result.equal) {
        result.equal = false;
        result.first_difference = diff;
      }
    }
    return result;
  }

  nlohmann::json unreplicated(Duration deadline) override {
    nlohmann::json out = nlohmann::json::object();
    if (!open_source(deadline).is_ok() || !open_target(deadline).is_ok()) {
      out["error"] = "source or target unreachable";
      return out;
    }
    auto streams = selected(source_js_.get());
    if (!streams) return out;
    const bool native = ctx_.mirror.nats.mode == NatsMode::native;
    for (const auto& s : *streams) {
      jsStreamInfo* si = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      if (js_GetStreamInfo(&si, source_js_.get(), s.c_str(), nullptr, &code) != NATS_OK) continue;
      Ptr<jsStreamInfo> info(si);
      std::uint64_t mirrored = 0;
      std::string error;
      if (native) {
        auto t = last_target_source_seq(s, error);
        if (!t) continue;
        mirrored = *t;
      } else {
        auto t = last_relayed_sequence(target_js_.get(), s, s, error);
        if (!t) continue;
        mirrored = *t;
      }
      if (info->State.LastSeq > mirrored) {
        out[s] = {{"first_sequence", mirrored + 1},
                  {"last_sequence", info->State.LastSeq},
                  {"messages", info->State.LastSeq - mirrored}};
      }
    }
    return out;
  }

 public:
  Status drill_prepare(Duration deadline) override {
    Status st = open_source(deadline);
    if (st.is_ok()) st = open_target(deadline);
    if (!st.is_ok()) return st;
    return nats::drill_prepare(source_side(), target_side(), ctx_.mirror.name, deadline);
  }
  Status drill_write(DrillMarkers& markers, int count, int consume, Duration deadline) override {
    if (Status st = open_source(deadline); !st.is_ok()) return st;
    return nats::drill_write(source_side(), markers, count, consume, deadline);
  }
  Status drill_check(const DrillMarkers& markers, DrillCheck& out, Duration deadline) override {
    if (Status st = open_target(deadline); !st.is_ok()) return st;
    return nats::drill_check(target_side(), markers, out, deadline);
  }

 private:
  DrillSide source_side() const { return {source_.get(), source_js_.get(), &ctx_.source}; }
  DrillSide target_side() const { return {target_.get(), target_js_.get(), &ctx_.target}; }

  Status open_source(Duration timeout) {
    if (source_js_) return Status::ok();
    Status st = source_.connect(ctx_.source, "mqdr/" + ctx_.mirror.name + "/ops", timeout);
    if (st.is_ok()) st = source_.jetstream(ctx_.source, timeout, source_js_);
    return st;
  }
  Status open_target(Duration timeout) {
    if (target_js_) return Status::ok();
    Status st = target_.connect(ctx_.target, "mqdr/" + ctx_.mirror.name + "/ops", timeout);
    if (st.is_ok()) st = target_.jetstream(ctx_.target, timeout, target_js_);
    return st;
  }
  std::optional<std::vector<std::string>> selected(jsCtx* js) {
    std::string error;
    auto names = list_streams(js, error);
    if (!names) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& n : *names) {
      if (selector_.matches(n)) out.push_back(n);
    }
    return out;
  }
  std::optional<std::uint64_t> last_target_source_seq(const std::string& stream, std::string& error) {
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, target_js_.get(), stream.c_str(), nullptr, &code) != NATS_OK) {
      error = "target stream info";
      return std::nullopt;
    }
    Ptr<jsStreamInfo> info(si);
    if (info->State.Msgs == 0) return 0;
    natsMsg* raw = nullptr;
    if (js_GetMsg(&raw, target_js_.get(), stream.c_str(), info->State.LastSeq, nullptr, &code) != NATS_OK) return 0;
    Ptr<natsMsg> msg(raw);
    return source_sequence_of(msg.get(), true).value_or(0);
  }

  // Lockstep comparison of the source with the target up to the last mirrored message.
  bool verify_stream(const std::string& s, bool native, Clock::time_point until, nlohmann::json& d,
                     std::string& diff, std::string& why) {
    StreamReader src(source_.get(), ctx_.source, source_js_.get(), s);
    StreamReader dst(target_.get(), ctx_.target, target_js_.get(), s);
    Status st = dst.open(1);
    if (st.is_ok()) st = src.open(1);
    if (!st.is_ok()) {
      why = st.message();
      return false;
    }
    // Where the target ends now: reading stops there instead of waiting for more. Where the
    // source begins now: copies of what the source's limits (max_msgs, max_age, ...) have
    // discarded since cannot be compared, and are not differences.
    std::uint64_t target_last = 0;
    std::uint64_t source_first = 0;
    for (auto* side : {&target_last, &source_first}) {
      const bool target = side == &target_last;
      jsStreamInfo* info = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      const natsStatus is = js_GetStreamInfo(&info, target ? target_js_.get() : source_js_.get(),
                                             s.c_str(), nullptr, &code);
      if (is != NATS_OK) {
        why = std::string(target ? "target" : "source") + " stream info: " + error_text(is, code);
        return false;
      }
      if (target) {
        target_last = info->State.Msgs == 0 ? 0 : info->State.LastSeq;
      } else {
        source_first = info->State.FirstSeq;
      }
      jsStreamInfo_Destroy(info);
    }
    std::uint64_t discarded = 0;
    std::uint64_t last_from = 0;  // source sequence of the last target message compared
    std::uint64_t target_read = 0;
    std::vector<StoredMessage> sbuf, tbuf;
    std::size_t si = 0, ti = 0;
    std::uint64_t compared = 0;
    std::uint64_t sdigest = 1469598103934665603ULL, tdigest = 1469598103934665603ULL;
    auto fnv = [](std::uint64_t h, std::string_view v) {
      for (unsigned char c : v) h = (h ^ c) * 1099511628211ULL;
      return h;
    };
    auto content = [&](const StoredMessage& m, bool relayed) {
      std::vector<Header> hs;
      parse_header_block(m.header_block, hs);
      if (relayed) hs = native ? hs : original_headers(hs);
      std::erase_if(hs, [](const Header& h) { return h.key == kOriginHeader; });
      if (native) {
        std::erase_if(hs, [](const Header& h) { return h.key == "Nats-Stream-Source"; });
      }
      std::string c = m.subject + '\n';
      for (const auto& h : hs) c += h.key + ":" + h.value.value_or("") + '\n';
      c += m.payload;
      return c;
    };
    for (;;) {
      if (Clock::now() >= until) {
        why = "deadline passed after " + std::to_string(compared) + " messages";
        return false;
      }
      if (ti >= tbuf.size()) {
        tbuf.clear();
        ti = 0;
        if (target_read >= target_last) break;  // end of the target
        if (!(st = dst.next(tbuf, 512, Duration(200))).is_ok()) {
          why = st.message();
          return false;
        }
        if (tbuf.empty()) break;  // end of the target
      }
      const StoredMessage& t = tbuf[ti];
      target_read = std::max(target_read, t.seq);
      std::vector<Header> ths;
      parse_header_block(t.header_block, ths);
      std::optional<std::uint64_t> from;
      for (auto it = ths.rbegin(); it != ths.rend() && !from; ++it) {
        if (!native && it->key == kSourceSeqHeader) from = std::stoull(it->value.value_or("0"));
        if (native && it->key == "Nats-Stream-Source") {
          auto v = it->value.value_or("");
          auto sp = v.find(' ');
          if (sp != std::string::npos) from = std::stoull(v.substr(sp + 1));
        }
      }
      ++ti;
      if (!from) continue;  // not a mirrored message (published on the target directly)
      if (*from < source_first) {
        ++discarded;  // gone from the source by its limits
        continue;
      }
      // Advance the source to that sequence; anything skipped on the way is missing.
      for (;;) {
        if (si >= sbuf.size()) {
          sbuf.clear();
          si = 0;
          if (!(st = src.next(sbuf, 512, Duration(200))).is_ok()) {
            why = st.message();
            return false;
          }
          if (sbuf.empty()) break;
        }
        if (sbuf[si].seq >= *from) break;
        // What came from the target in the first place is never copied back (the relay skips
        // it, see kOriginHeader): not missing.
        if (last_header_value(sbuf[si].header_block, kOriginHeader) == ctx_.target.name) {
          ++si;
          continue;
        }
        if (diff.empty()) {
          diff = "stream " + s + " sequence " + std::to_string(sbuf[si].seq) + ": missing on the target";
        }
        ++si;
      }
      if (si >= sbuf.size() || sbuf[si].seq != *from) {
        if (diff.empty()) {
          const bool passed = *from <= last_from;
          diff = "stream " + s + " target sequence " + std::to_string(t.seq) + ": source sequence " +
                 std::to_string(*from) +
                 (passed ? " again (a duplicate: an earlier target message already holds it)"
                         : " not found on the source");
        }
        continue;
      }
      const std::string a = content(sbuf[si], false);
      const std::string b = content(t, true);
      sdigest = fnv(sdigest, a);
      tdigest = fnv(tdigest, b);
      if (a != b && diff.empty()) {
        diff = "stream " + s + " sequence " + std::to_string(*from) + ": content differs (target sequence " +
               std::to_string(t.seq) + ")";
      }
      last_from = *from;
      ++si;
      ++compared;
    }
    d = {{"compared", compared},
         {"discarded_on_source", discarded},
         {"source_digest", fmt::format("{:016x}", sdigest)},
         {"target_digest", fmt::format("{:016x}", tdigest)}};
    return true;
  }

  MirrorContext ctx_;
  StreamSelector selector_;
  Connection source_, target_;
  Ptr<jsCtx> source_js_, target_js_;
};

}  // namespace

void register_kind(BrokerRegistry& registry) {
  BrokerKind kind;
  kind.make_mirror = [](const MirrorContext& ctx) -> WorkerPtr { return std::make_unique<MirrorWorker>(ctx); };
  kind.make_probe = [](const ClusterConfig& c) -> ProbePtr { return std::make_unique<NatsProbe>(c); };
  kind.make_mirror_ops = [](const MirrorContext& ctx) -> MirrorOpsPtr {
    return std::make_unique<NatsMirrorOps>(ctx);
  };
  registry.add(ClusterKind::nats, std::move(kind));
}

}  // namespace mqdr::nats
