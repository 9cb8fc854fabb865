#pragma once
// Thin layer over cnats shared by every part of src/nats: owning pointers, connecting to a
// cluster from its ClusterConfig, JetStream contexts, error text, the raw header block of a
// message and the headers a relay adds. Nothing here keeps state between calls; every function
// may be called from any thread (cnats connections and contexts are thread-safe).

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mqdr/config.hpp"
#include "mqdr/record.hpp"
#include "mqdr/status.hpp"

namespace mqdr::nats {

struct Deleter {
  void operator()(natsConnection* p) const { natsConnection_Destroy(p); }
  void operator()(natsOptions* p) const { natsOptions_Destroy(p); }
  void operator()(jsCtx* p) const { jsCtx_Destroy(p); }
  void operator()(natsSubscription* p) const { natsSubscription_Destroy(p); }
  void operator()(natsMsg* p) const { natsMsg_Destroy(p); }
  void operator()(jsStreamInfo* p) const { jsStreamInfo_Destroy(p); }
  void operator()(jsStreamInfoList* p) const { jsStreamInfoList_Destroy(p); }
  void operator()(jsStreamNamesList* p) const { jsStreamNamesList_Destroy(p); }
  void operator()(jsConsumerInfo* p) const { jsConsumerInfo_Destroy(p); }
  void operator()(jsConsumerInfoList* p) const { jsConsumerInfoList_Destroy(p); }
  void operator()(jsAccountInfo* p) const { jsAccountInfo_Destroy(p); }
};
template <class T>
using Ptr = std::unique_ptr<T, Deleter>;

// Headers a relay adds to every message it publishes on the target.
inline constexpr std::string_view kMsgIdHeader = "Nats-Msg-Id";
inline constexpr std::string_view kExpectedLastMsgIdHeader = "Nats-Expected-Last-Msg-Id";
inline constexpr std::string_view kSourceStreamHeader = "Mqdr-Source-Stream";
inline constexpr std::string_view kSourceSeqHeader = "Mqdr-Source-Sequence";
inline constexpr std::string_view kSourceTimeHeader = "Mqdr-Source-Time";  // unix nanoseconds
// The cluster a message was first published to (added by the first relay, kept by later ones). A
// relay never copies a message back to the cluster it came from: the reverse mirror of a
// failed-over pair, or active-active pairs, would otherwise loop.
inline constexpr std::string_view kOriginHeader = "Mqdr-Origin";
// A source message's own Nats-Msg-Id / Nats-Expected-* headers are kept under this prefix: on
// the target they would be interpreted again (dedup, expectations about the source stream).
inline constexpr std::string_view kOrigHeaderPrefix = "Mqdr-Orig-";
// Record attribute holding the source timestamp in nanoseconds.
inline constexpr std::string_view kTimeNsAttribute = "nats.time_ns";
// Record attribute holding the exact header block when re-encoding the parsed headers would
// not give the same bytes (unusual spacing, a status line).
inline constexpr std::string_view kRawHeadersAttribute = "nats.raw_headers";

// "text (status N, JetStream error E)" including cnats' last error for this thread.
std::string error_text(natsStatus s, jsErrCode code = static_cast<jsErrCode>(0));

// The public key ("U...") of a user NKey seed ("SU..."); empty with `error` set when the seed
// is malformed. The seed is never part of the error.
std::string nkey_public_from_seed(std::string_view seed, std::string& error);

// Host of a server URL ("tls://user@h:4222" -> "h", "nats://[::1]:4222" -> "::1").
std::string url_host(std::string_view url);

// The name a server's certificate must carry: tls.server_name, else the host of the first
// server; empty when names are not checked (tls.verify or tls.verify_hostname off).
std::string tls_name_to_check(const ClusterConfig& cluster);

// Library init (idempotent, thread-safe).
void ensure_library();

// One connection to a cluster. `name` shows in the server's connz (e.g. "mqdr/orders-nats").
// Reconnects forever in the background; connect() itself fails with retry when no server
// answers within the timeout.
class Connection {
 public:
  Status connect(const ClusterConfig& cluster, const std::string& name, Duration timeout);
  natsConnection* get() const { return conn_.get(); }
  explicit operator bool() const { return conn_ != nullptr; }
  // A JetStream context with the cluster's domain/API prefix and `wait` for API calls.
  Status jetstream(const ClusterConfig& cluster, Duration wait, Ptr<jsCtx>& out,
                   const jsOptions* base = nullptr) const;
  void close();

 private:
  Ptr<natsConnection> conn_;
};

// Raw header block ("NATS/1.0\r\n...\r\n\r\n") of a message received from the server, exactly
// as stored; empty when the message has no headers.
std::string_view raw_header_block(natsMsg* msg);

// Parses a raw header block into ordered headers. Returns false when it is malformed.
bool parse_header_block(std::string_view block, std::vector<Header>& out);

// Encodes headers as "Key: Value\r\n" lines (no status line, no final CRLF).
void append_header_lines(std::string& out, const std::vector<Header>& headers);

// Builds a message whose header block is used byte for byte (cnats otherwise re-encodes headers
// from a hash map, losing their order). `header_block` must be a complete block.
Status make_raw_message(const std::string& subject, std::string_view header_block,
                        std::string_view payload, Ptr<natsMsg>& out);

// Last value of header `key` in a raw block (relayed messages may carry an earlier hop's
// headers before ours).
std::optional<std::string> last_header_value(std::string_view block, std::string_view key);

// Highest source sequence relayed to `stream` on the target, read from the Mqdr-Source-Sequence
// header of its last message: 0 when the stream is empty or its last message was not relayed by
// mqdr from `source_stream`; nullopt with `error` set when the target cannot be asked.
std::optional<std::uint64_t> last_relayed_sequence(jsCtx* js, const std::string& stream,
                                                   const std::string& source_stream,
                                                   std::string& error);

// Pulls messages from a consumer with the JetStream pull protocol directly: requests on
// <api prefix>.CONSUMER.MSG.NEXT.<stream>.<consumer> answered to our own inbox, two long-poll
// requests kept outstanding so that fetching overlaps with the caller's work. (cnats 3.4.1's
// natsSubscription_Fetch overruns its array when messages of an earlier, timed-out fetch are
// still buffered, so it is not used.) One thread.
class Puller {
 public:
  Status open(natsConnection* conn, const ClusterConfig& cluster, const std::string& stream,
              const std::string& consumer, int batch);
  // Calls `on_msg` for up to `max` messages (user messages only, with their ack reply), waiting
  // at most `wait` for the first. The callback does not own the message.
  Status next(std::size_t max, Duration wait, const std::function<void(natsMsg*)>& on_msg);
  void close();

 private:
  Status request_more();
  natsConnection* conn_ = nullptr;
  std::string cluster_;
  std::string stream_;
  int batch_ = 256;
  Ptr<natsSubscription> sub_;
  std::string inbox_;
  std::string next_subject_;
  std::deque<int> requests_;  // messages still due on each outstanding request
  std::chrono::steady_clock::time_point last_activity_{};
};

// The JetStream API prefix for a cluster: api_prefix, "$JS.<domain>.API" or "$JS.API".
std::string api_prefix_of(const ClusterConfig& cluster);

// A durable name derived from the mirror name ('.', '*', '>' and spaces are not allowed).
std::string consumer_name_for(const std::string& mirror);

}  // namespace mqdr::nats
