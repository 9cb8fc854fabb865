#include "nats/topology.hpp"

#include <algorithm>
#include <cstring>

#include "nats/client.hpp"
#include "nats/drill.hpp"

namespace mqdr::nats {

StreamSelector::StreamSelector(const std::vector<std::string>& patterns, bool drill) : drill_(drill) {
  for (const auto& p : patterns) patterns_.emplace_back(p, std::regex::ECMAScript);
}

bool StreamSelector::matches(const std::string& name) const {
  if (drill_ && name == kDrillStream) return true;
  for (const auto& re : patterns_) {
    if (std::regex_match(name, re)) return true;
  }
  return false;
}

std::optional<std::vector<std::string>> list_streams(jsCtx* js, std::string& error) {
  jsStreamNamesList* list = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_StreamNames(&list, js, nullptr, &code);
  std::vector<std::string> names;
  if (s == NATS_NOT_FOUND) return names;  // no streams at all
  if (s != NATS_OK) {
    if (code == JSNotEnabledErr || code == JSNotEnabledForAccountErr || s == NATS_NO_RESPONDERS) {
      error = "JetStream is not enabled";
    } else {
      error = "cannot list streams: " + error_text(s, code);
    }
    return std::nullopt;
  }
  Ptr<jsStreamNamesList> owned(list);
  for (int i = 0; i < list->Count; ++i) names.emplace_back(list->List[i]);
  std::sort(names.begin(), names.end());
  return names;
}

StreamSpec spec_from(const jsStreamConfig& cfg) {
  StreamSpec s;
  s.name = cfg.Name != nullptr ? cfg.Name : "";
  for (int i = 0; i < cfg.SubjectsLen; ++i) s.subjects.emplace_back(cfg.Subjects[i]);
  s.retention = cfg.Retention;
  s.max_age_ns = cfg.MaxAge;
  s.max_bytes = cfg.MaxBytes;
  s.max_msgs = cfg.MaxMsgs;
  s.max_msgs_per_subject = cfg.MaxMsgsPerSubject;
  s.max_msg_size = cfg.MaxMsgSize;
  s.storage = cfg.Storage;
  s.discard = cfg.Discard;
  s.duplicates_ns = cfg.Duplicates;
  s.replicas = cfg.Replicas;
  s.allow_rollup = cfg.AllowRollup;
  s.deny_delete = cfg.DenyDelete;
  s.deny_purge = cfg.DenyPurge;
  if (cfg.SourcesLen == 1 && cfg.Sources[0] != nullptr && cfg.Sources[0]->Name != nullptr) {
    s.source_name = cfg.Sources[0]->Name;
    if (cfg.Sources[0]->External != nullptr && cfg.Sources[0]->External->APIPrefix != nullptr) {
      s.source_api_prefix = cfg.Sources[0]->External->APIPrefix;
    }
  } else if (cfg.SourcesLen > 1) {
    s.source_name = "(several sources)";
  }
  if (cfg.Mirror != nullptr) s.source_name = "(mirror)";
  return s;
}

std::string api_prefix_for_domain(const std::string& domain) { return "$JS." + domain + ".API"; }

std::int64_t relay_overhead_bytes(const std::string& stream) {
  const auto n = static_cast<std::int64_t>(stream.size());
  // Nats-Msg-Id, Mqdr-Source-Stream/-Sequence/-Time and Nats-Expected-Last-Msg-Id with 20-digit
  // numbers, plus the header line and final CRLF when the source message had no headers.
  return (13 + n + 1 + 20 + 2) + (20 + n + 2) + (22 + 20 + 2) + (18 + 20 + 2) + (27 + n + 1 + 20 + 2) + 12;
}

Status target_spec(const StreamSpec& source, NatsMode mode, const std::string& source_api_prefix,
                   StreamSpec& out, double avg_msg_bytes) {
  out = source;
  out.source_name.clear();
  out.source_api_prefix.clear();
  if (mode == NatsMode::relay) {
    if (source.retention == js_WorkQueuePolicy) {
      return Status::fatal("stream " + source.name +
                           " has WorkQueue retention: a relay would take its messages away from "
                           "its workers; use `mode: native` for this mirror");
    }
    if (source.subjects.empty()) {
      return Status::fatal("stream " + source.name +
                           " has no subjects (it is itself a mirror or sources other streams); a "
                           "relay publishes by subject, use `mode: native`");
    }
    const std::int64_t overhead = relay_overhead_bytes(source.name);
    if (source.max_msg_size > 0) out.max_msg_size = source.max_msg_size + static_cast<std::int32_t>(overhead);
    if (source.max_bytes > 0) {
      const double avg = std::max(32.0, avg_msg_bytes > 0 ? avg_msg_bytes : 1024.0);
      auto count = static_cast<std::int64_t>(static_cast<double>(source.max_bytes) / avg) + 1;
      if (source.max_msgs > 0) count = std::min(count, source.max_msgs);
      out.max_bytes = source.max_bytes + count * overhead;
    }
    return Status::ok();
  }
  // Native: no subjects until promotion, and the source stream as the only source.
  out.subjects.clear();
  out.source_name = source.name;
  out.source_api_prefix = source_api_prefix;
  return Status::ok();
}

namespace {

// A jsStreamConfig whose pointers refer to a StreamSpec that outlives it.
struct ConfigView {
  explicit ConfigView(const StreamSpec& spec) {
    jsStreamConfig_Init(&cfg);
    cfg.Name = spec.name.c_str();
    for (const auto& s : spec.subjects) subjects.push_back(s.c_str());
    cfg.Subjects = subjects.empty() ? nullptr : subjects.data();
    cfg.SubjectsLen = static_cast<int>(subjects.size());
    cfg.Retention = spec.retention;
    cfg.MaxAge = spec.max_age_ns;
    cfg.MaxBytes = spec.max_bytes;
    cfg.MaxMsgs = spec.max_msgs;
    cfg.MaxMsgsPerSubject = spec.max_msgs_per_subject;
    cfg.MaxMsgSize = spec.max_msg_size;
    cfg.Storage = spec.storage;
    cfg.Discard = spec.discard;
    cfg.Duplicates = spec.duplicates_ns;
    cfg.Replicas = spec.replicas;
    cfg.AllowRollup = spec.allow_rollup;
    cfg.DenyDelete = spec.deny_delete;
    cfg.DenyPurge = spec.deny_purge;
    if (!spec.source_name.empty()) {
      std::memset(&source, 0, sizeof(source));
      source.Name = spec.source_name.c_str();
      if (!spec.source_api_prefix.empty()) {
        std::memset(&external, 0, sizeof(external));
        external.APIPrefix = spec.source_api_prefix.c_str();
        external.DeliverPrefix = "";  // cnats marshals it unconditionally
        source.External = &external;
      }
      sources[0] = &source;
      cfg.Sources = sources;
      cfg.SourcesLen = 1;
    }
  }
  jsStreamConfig cfg;
  std::vector<const char*> subjects;
  jsStreamSource source;
  jsExternalStream external;
  jsStreamSource* sources[1] = {nullptr};
};

bool replica_placement_error(int code) {
  return code == JSStreamReplicasNotSupportedErr || code == JSClusterNoPeersErr ||
         code == JSInsufficientResourcesErr || code == 10004 /* no suitable peers */;
}

}  // namespace

Status ensure_interest_holder(jsCtx* target, const std::string& stream, const std::string& holder) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&ci, target, stream.c_str(), holder.c_str(), nullptr, &code);
  if (s == NATS_OK) {
    jsConsumerInfo_Destroy(ci);
    return Status::ok();
  }
  if (code != JSConsumerNotFoundErr) {
    return Status::retry("consumer info of " + stream + " > " + holder + " on the target: " + error_text(s, code));
  }
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = holder.c_str();
  cc.Description = "mqdr: keeps every mirrored message of an interest-retention stream until promotion";
  cc.AckPolicy = js_AckExplicit;
  cc.DeliverPolicy = js_DeliverAll;
  s = js_AddConsumer(&ci, target, stream.c_str(), &cc, nullptr, &code);
  if (s != NATS_OK) {
    return Status::retry("cannot create " + stream + " > " + holder + " on the target: " + error_text(s, code));
  }
  jsConsumerInfo_Destroy(ci);
  return Status::ok();
}

Status remove_interest_holder(jsCtx* target, const std::string& stream, const std::string& holder) {
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteConsumer(target, stream.c_str(), holder.c_str(), nullptr, &code);
  if (s != NATS_OK && code != JSConsumerNotFoundErr) {
    return Status::retry("cannot delete " + stream + " > " + holder + " on the target: " + error_text(s, code));
  }
  return Status::ok();
}

Status read_stream(jsCtx* js, const std::string& name, const std::string& cluster, StreamSpec& out,
                   double* avg_msg_bytes) {
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js, name.c_str(), nullptr, &code);
  if (s != NATS_OK) {
    if (code == JSStreamNotFoundErr) {
      return Status::fatal("stream " + name + " does not exist on cluster " + cluster);
    }
    if (code == JSNotEnabledErr || code == JSNotEnabledForAccountErr || s == NATS_NO_RESPONDERS) {
      return Status::fatal("JetStream is not enabled on cluster " + cluster);
    }
    return Status::retry("stream info of " + name + " on cluster " + cluster + ": " + error_text(s, code));
  }
  Ptr<jsStreamInfo> info(si);
  out = spec_from(*info->Config);
  if (avg_msg_bytes != nullptr) {
    *avg_msg_bytes = info->State.Msgs > 0
                         ? static_cast<double>(info->State.Bytes) / static_cast<double>(info->State.Msgs)
                         : 0;
  }
  return Status::ok();
}

Status apply_stream(jsCtx* target, const StreamSpec& desired, SyncResult& result, bool promoting) {
  result = SyncResult{};
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, target, desired.name.c_str(), nullptr, &code);
  if (s == NATS_OK) {
    Ptr<jsStreamInfo> info(si);
    StreamSpec current = spec_from(*info->Config);
    if (!promoting && desired.source_name.empty() && !current.source_name.empty()) {
      return Status::fatal("target stream " + desired.name +
                           " is a mirror or sources other streams; a relay cannot write to it");
    }
    StreamSpec wanted = desired;
    // Replicas: keep what the target could place when it is fewer than asked.
    if (current.replicas < wanted.replicas) wanted.replicas = current.replicas;
    if (desired.source_name.empty() && wanted.max_bytes > 0 && current.max_bytes > wanted.max_bytes) {
      wanted.max_bytes = current.max_bytes;
    }
    result.replicas = current.replicas;
    result.duplicates_ns = current.duplicates_ns;
    if (current == wanted) return Status::ok();
    if (current.storage != wanted.storage || current.retention != wanted.retention) {
      return Status::fatal("target stream " + desired.name +
                           " differs in storage or retention, which cannot be changed in place; "
                           "recreate it on the target");
    }
    ConfigView view(wanted);
    jsStreamInfo* updated = nullptr;
    s = js_UpdateStream(&updated, target, &view.cfg, nullptr, &code);
    if (s != NATS_OK) {
      return Status::retry("cannot update target stream " + desired.name + ": " + error_text(s, code));
    }
    Ptr<jsStreamInfo> up(updated);
    result.updated = true;
    result.duplicates_ns = up->Config->Duplicates;
    return Status::ok();
  }
  if (code != JSStreamNotFoundErr) {
    if (code == JSNotEnabledErr || code == JSNotEnabledForAccountErr || s == NATS_NO_RESPONDERS) {
      return Status::fatal("JetStream is not enabled on the target cluster");
    }
    return Status::retry("stream info of " + desired.name + " on the target: " + error_text(s, code));
  }
  StreamSpec wanted = desired;
  for (;;) {
    ConfigView view(wanted);
    jsStreamInfo* created = nullptr;
    s = js_AddStream(&created, target, &view.cfg, nullptr, &code);
    if (s == NATS_OK) {
      Ptr<jsStreamInfo> c(created);
      result.created = true;
      result.replicas = wanted.replicas;
      result.duplicates_ns = c->Config->Duplicates;
      return Status::ok();
    }
    if (wanted.replicas > 1 && replica_placement_error(static_cast<int>(code))) {
      --wanted.replicas;
      continue;
    }
    return Status::retry("cannot create target stream " + desired.name + ": " + error_text(s, code));
  }
}

}  // namespace mqdr::nats
