#include "nats/positions.hpp"

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "mqdr/broker.hpp"
#include "nats/client.hpp"

namespace mqdr::nats {

namespace {

std::optional<std::uint64_t> parse_u64(const char* s) {
  if (s == nullptr || *s == '\0') return std::nullopt;
  try {
    std::size_t used = 0;
    std::uint64_t v = std::stoull(s, &used);
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<std::string> last_value(natsMsg* msg, std::string_view key) {
  const char** values = nullptr;
  int count = 0;
  const std::string k(key);
  if (natsMsgHeader_Values(msg, k.c_str(), &values, &count) != NATS_OK || count <= 0) return std::nullopt;
  std::string v = values[count - 1];
  free(const_cast<char**>(values));
  return v;
}

}  // namespace

std::optional<std::uint64_t> source_sequence_of(natsMsg* msg, bool native) {
  if (native) {
    auto v = last_value(msg, "Nats-Stream-Source");
    if (!v) return std::nullopt;
    auto sp = v->find(' ');
    if (sp == std::string::npos) return std::nullopt;
    return parse_u64(v->c_str() + sp + 1);
  }
  auto v = last_value(msg, kSourceSeqHeader);
  if (!v) return std::nullopt;
  return parse_u64(v->c_str());
}

std::optional<std::uint64_t> translate_sequence(jsCtx* target, const std::string& stream,
                                                std::uint64_t source_seq, bool native,
                                                std::string& error) {
  if (source_seq == 0) return 0;
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, target, stream.c_str(), nullptr, &code);
  if (s != NATS_OK) {
    error = "target stream " + stream + ": " + error_text(s, code);
    return std::nullopt;
  }
  Ptr<jsStreamInfo> info(si);
  if (info->State.Msgs == 0) return 0;
  std::uint64_t lo = info->State.FirstSeq;
  std::uint64_t hi = info->State.LastSeq;
  // Source sequence at target sequence `t`, or at the next stored one (deleted messages leave
  // gaps); returns the target sequence actually read through `at`.
  auto read_at = [&](std::uint64_t t, std::uint64_t limit, std::uint64_t& at) -> std::optional<std::uint64_t> {
    for (at = t; at <= limit; ++at) {
      natsMsg* raw = nullptr;
      natsStatus st = js_GetMsg(&raw, target, stream.c_str(), at, nullptr, &code);
      if (st != NATS_OK) {
        if (st == NATS_NOT_FOUND || code == JSNoMessageFoundErr) continue;
        error = "target stream " + stream + " message " + std::to_string(at) + ": " + error_text(st, code);
        return std::nullopt;
      }
      Ptr<natsMsg> msg(raw);
      auto seq = source_sequence_of(msg.get(), native);
      if (seq) return seq;
    }
    return std::nullopt;
  };
  std::uint64_t best = 0;
  while (lo <= hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    std::uint64_t at = 0;
    error.clear();
    auto seq = read_at(mid, hi, at);
    if (!seq) {
      if (!error.empty()) return std::nullopt;
      // Nothing readable in [mid, hi]: the answer is below mid.
      if (mid == 0) break;
      hi = mid - 1;
      continue;
    }
    if (*seq <= source_seq) {
      best = at;
      lo = at + 1;
    } else {
      if (mid == 0) break;
      hi = mid - 1;
    }
  }
  return best;
}

ConsumerSync::ConsumerSync(jsCtx* source, jsCtx* target, const std::vector<std::string>& patterns,
                           std::string skip_prefix)
    : source_(source), target_(target), skip_prefix_(std::move(skip_prefix)) {
  for (const auto& p : patterns) patterns_.emplace_back(p, std::regex::ECMAScript);
}

std::string ConsumerSync::sync_stream(const std::string& stream, bool native) {
  jsConsumerInfoList* list = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_Consumers(&list, source_, stream.c_str(), nullptr, &code);
  if (s == NATS_NOT_FOUND) return "";
  if (s != NATS_OK) return "cannot list consumers of " + stream + " on the source: " + error_text(s, code);
  Ptr<jsConsumerInfoList> owned(list);
  std::string problems;
  for (int i = 0; i < list->Count; ++i) {
    jsConsumerInfo* ci = list->List[i];
    if (ci == nullptr || ci->Config == nullptr || ci->Config->Durable == nullptr) continue;
    const std::string name = ci->Config->Durable;
    if (name.rfind(skip_prefix_, 0) == 0) continue;
    // Drill consumers (mqdr drill) are always carried over: the drill checks their resume.
    bool match = name.rfind(std::string(kDrillName) + "-", 0) == 0;
    for (const auto& re : patterns_) match = match || std::regex_match(name, re);
    if (!match) continue;

    std::string error;
    auto floor = translate_sequence(target_, stream, ci->AckFloor.Stream, native, error);
    if (!floor) {
      problems += (problems.empty() ? "" : "; ") + name + ": " + error;
      continue;
    }
    const std::uint64_t start = *floor + 1;
    jsConsumerInfo* twin = nullptr;
    s = js_GetConsumerInfo(&twin, target_, stream.c_str(), name.c_str(), nullptr, &code);
    if (s == NATS_OK) {
      Ptr<jsConsumerInfo> t(twin);
      const bool placed = t->Config->DeliverPolicy == js_DeliverByStartSequence && t->Config->OptStartSeq == start;
      const bool all = start == 1 && t->Config->DeliverPolicy == js_DeliverAll;
      // A twin already past the floor (a client consumed from it after a failover) is left alone.
      if (placed || all || t->AckFloor.Stream >= start) continue;
      s = js_DeleteConsumer(target_, stream.c_str(), name.c_str(), nullptr, &code);
      if (s != NATS_OK && code != JSConsumerNotFoundErr) {
        problems += (problems.empty() ? "" : "; ") + name + ": cannot move twin: " + error_text(s, code);
        continue;
      }
    } else if (code != JSConsumerNotFoundErr) {
      problems += (problems.empty() ? "" : "; ") + name + ": " + error_text(s, code);
      continue;
    }
    jsConsumerConfig cc = *ci->Config;  // same settings; only the start differs
    cc.Name = nullptr;
    if (start > 1) {
      cc.DeliverPolicy = js_DeliverByStartSequence;
      cc.OptStartSeq = start;
    } else {
      cc.DeliverPolicy = js_DeliverAll;
      cc.OptStartSeq = 0;
    }
    cc.OptStartTime = 0;
    cc.Replicas = 0;  // the target stream's
    jsConsumerInfo* created = nullptr;
    s = js_AddConsumer(&created, target_, stream.c_str(), &cc, nullptr, &code);
    if (s != NATS_OK) {
      problems += (problems.empty() ? "" : "; ") + name + ": cannot create twin: " + error_text(s, code);
      continue;
    }
    jsConsumerInfo_Destroy(created);
    ++moved_;
    spdlog::debug("stream={} consumer={} twin placed at target sequence {} (source ack floor {})",
                  stream, name, start, ci->AckFloor.Stream);
  }
  return problems;
}

void save_native_subjects(const std::filesystem::path& state_dir, const std::string& stream,
                          const std::vector<std::string>& subjects) {
  if (state_dir.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  const auto file = state_dir / "nats-native-subjects.json";
  nlohmann::json all = nlohmann::json::object();
  {
    std::ifstream in(file);
    if (in) {
      try {
        in >> all;
      } catch (const std::exception&) {
        all = nlohmann::json::object();
      }
    }
  }
  if (all.contains(stream) && all[stream] == nlohmann::json(subjects)) return;
  all[stream] = subjects;
  const auto tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << all.dump(2) << "\n";
  }
  std::filesystem::rename(tmp, file, ec);
}

std::optional<std::vector<std::string>> load_native_subjects(const std::filesystem::path& state_dir,
                                                             const std::string& stream) {
  std::ifstream in(state_dir / "nats-native-subjects.json");
  if (!in) return std::nullopt;
  try {
    nlohmann::json all;
    in >> all;
    if (!all.contains(stream)) return std::nullopt;
    return all[stream].get<std::vector<std::string>>();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace mqdr::nats
