#pragma once
// Stream topology: which source streams a mirror covers, and the target stream kept in line with
// each source stream's config (subjects, retention, limits, storage, discard, duplicate window,
// replicas capped to what the target can place). Relay targets take the source subjects; native
// targets source from the source stream through its JetStream domain and get the subjects only
// when promoted (a leafnode link carries core subjects across, so a standby stream listening on
// them would also capture the primary's publishes). Stateless functions, any thread.

#include <nats/nats.h>

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "mqdr/config.hpp"
#include "mqdr/status.hpp"

namespace mqdr::nats {

class StreamSelector {
 public:
  // Throws on a bad regex. `drill`: the drill stream MQDR_DRILL is selected too.
  explicit StreamSelector(const std::vector<std::string>& patterns, bool drill = false);
  bool matches(const std::string& name) const;

 private:
  std::vector<std::regex> patterns_;
  bool drill_ = false;
};

// Names of the streams on a cluster (sorted); nullopt with `error` when it cannot be asked.
std::optional<std::vector<std::string>> list_streams(jsCtx* js, std::string& error);

// The parts of a stream config a mirror carries over, as plain values.
struct StreamSpec {
  std::string name;
  std::vector<std::string> subjects;
  jsRetentionPolicy retention = js_LimitsPolicy;
  std::int64_t max_age_ns = 0;
  std::int64_t max_bytes = -1;
  std::int64_t max_msgs = -1;
  std::int64_t max_msgs_per_subject = -1;
  std::int32_t max_msg_size = -1;
  jsStorageType storage = js_FileStorage;
  jsDiscardPolicy discard = js_DiscardOld;
  std::int64_t duplicates_ns = 0;
  std::int64_t replicas = 1;
  bool allow_rollup = false;
  bool deny_delete = false;
  bool deny_purge = false;
  // Native mode: source stream name and the API prefix to reach it (empty = relay target).
  std::string source_name;
  std::string source_api_prefix;

  bool operator==(const StreamSpec&) const = default;
};

StreamSpec spec_from(const jsStreamConfig& cfg);

// Bytes a relay adds to each message of `stream` at most (its headers, see sink.hpp).
std::int64_t relay_overhead_bytes(const std::string& stream);

// Desired target spec for a source stream. Fails (fatal) for what the mode cannot mirror.
// Relay targets get max_msg_size and max_bytes raised by the relay's per-message headers (for
// max_bytes: times the number of messages the source can hold, estimated from max_msgs or from
// `avg_msg_bytes`, the source's current average), so that they hold what the source holds.
Status target_spec(const StreamSpec& source, NatsMode mode, const std::string& source_api_prefix,
                   StreamSpec& out, double avg_msg_bytes = 0);

struct SyncResult {
  bool created = false;
  bool updated = false;
  std::int64_t replicas = 1;        // what the target placed
  std::int64_t duplicates_ns = 0;   // the target's duplicate window
};

// Creates or updates `desired` on the target. Replicas are lowered until the target can place
// them. Fields a server cannot change in place (storage, retention) are reported as an error.
// A relay target's max_bytes is never lowered (the estimate moves with the average size).
// `promoting`: the target's source may be removed (native promotion); otherwise a target that
// sources or mirrors something is refused for a relay.
Status apply_stream(jsCtx* target, const StreamSpec& desired, SyncResult& result, bool promoting = false);

// Interest retention keeps a message only while a consumer needs it, and the target stream has
// no consumers of its own: a durable that never acks (named `holder`) keeps every message there
// until promotion removes it (then the twins of the source's consumers decide).
Status ensure_interest_holder(jsCtx* target, const std::string& stream, const std::string& holder);
Status remove_interest_holder(jsCtx* target, const std::string& stream, const std::string& holder);

// Reads a stream's spec; fatal when it does not exist.
// `avg_msg_bytes` (optional) receives the stream's current average stored message size.
Status read_stream(jsCtx* js, const std::string& name, const std::string& cluster,
                   StreamSpec& out, double* avg_msg_bytes = nullptr);

// The JetStream API prefix of a domain ("$JS.<domain>.API").
std::string api_prefix_for_domain(const std::string& domain);

}  // namespace mqdr::nats
