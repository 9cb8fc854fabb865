#pragma once
// Reads a stream in order from a given sequence through an ephemeral pull consumer with no acks
// (verify, unreplicated reports, tests). Leaves no trace: the ephemeral consumer is deleted on
// destruction and expires by itself if the process dies. One thread.

#include <nats/nats.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mqdr/status.hpp"
#include "nats/client.hpp"

namespace mqdr::nats {

struct StoredMessage {
  std::uint64_t seq = 0;
  std::int64_t time_ns = 0;
  std::string subject;
  std::string header_block;  // raw, byte for byte ("" when none)
  std::string payload;
};

class StreamReader {
 public:
  // `conn` and `cluster` are those `js` was made from (the pull goes through the connection).
  StreamReader(natsConnection* conn, const ClusterConfig& cluster, jsCtx* js, std::string stream)
      : js_(js), stream_(std::move(stream)), cluster_(cluster), conn_(conn) {}
  ~StreamReader();
  Status open(std::uint64_t from_seq = 1);
  // Appends up to `max` messages, waiting at most `wait` for the first; empty = nothing now.
  Status next(std::vector<StoredMessage>& out, int max, Duration wait);

 private:
  jsCtx* js_;
  std::string stream_;
  std::string consumer_;
  ClusterConfig cluster_;
  natsConnection* conn_ = nullptr;
  Puller puller_;
};

// Headers of a relayed message without the ones the relay added (Nats-Msg-Id, Mqdr-Source-*,
// Nats-Expected-Last-Msg-Id), and with Mqdr-Orig-* renamed back: what the source message had.
std::vector<Header> original_headers(const std::vector<Header>& relayed);

}  // namespace mqdr::nats
