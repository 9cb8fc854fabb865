#pragma once
// Reads one JetStream stream through a durable pull consumer (mqdr::Source).
//
// Owns its pull subscription on a connection it is given (the connection outlives it). open()
// (re)creates the durable consumer so that delivery restarts right after the last position that
// is safely on the target: max(consumer ack floor, `resume_after`), where the caller reads
// `resume_after` from the target stream's last relayed message. Recreating also drops what a
// crashed predecessor had fetched but not acked, which JetStream would otherwise redeliver only
// after the ack wait, behind newer messages, i.e. out of order. For interest-retention streams a
// temporary consumer holds the interest while the durable is recreated.
//
// Messages are pulled by a Puller (client.hpp), which keeps requests outstanding so that
// fetching overlaps with publishing.
//
// The consumer is AckAll: commit() acks the last confirmed message, which acks every earlier one.
// Redeliveries of messages already handed to the pipeline (ack wait expired while the target was
// slow) are dropped: the original is still in flight and its ack covers them.
// The consumer's delivery sequence must run without gaps: a delivery we never saw went to some
// other reader of the same durable (a second mqdr running this mirror, or a pull request still
// waiting from a stopped one), and acking past it would acknowledge a message the target never
// got. read() then fails (retryable); open() recreates the consumer at the target's position.
// Called from the pipeline's thread only.

#include <cstdint>
#include <deque>
#include <chrono>
#include <optional>
#include <string>

#include "mqdr/source.hpp"
#include "nats/client.hpp"

namespace mqdr::nats {

struct AckMeta {
  std::uint64_t stream_seq = 0;
  std::uint64_t consumer_seq = 0;  // the consumer's delivery sequence: +1 for every delivery
  std::uint64_t delivered = 0;     // how often this message was delivered
  std::int64_t timestamp_ns = 0;
  std::uint64_t pending = 0;
};
// Parses a JetStream ack subject ($JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.
// <pending>, or the v2 form with domain and account hash).
std::optional<AckMeta> parse_ack_subject(std::string_view reply);

struct StreamSourceOptions {
  std::string mirror;         // for logs
  std::string stream;
  std::string consumer;       // durable name
  int batch = 256;            // fetch batch
  int max_ack_pending = 8192;
  Duration ack_wait{std::chrono::seconds(30)};
  std::uint64_t resume_after = 0;  // highest source sequence known to be on the target
  // Messages whose Mqdr-Origin is this cluster (the target's name) are not passed on: they were
  // copied here from the target. They are acked once everything before them is.
  std::string skip_origin;
  Duration api_wait{std::chrono::seconds(5)};
};

class StreamSource : public Source {
 public:
  StreamSource(natsConnection* conn, ClusterConfig cluster, StreamSourceOptions options);
  ~StreamSource() override;

  Status open() override;
  Status read(Batch& out, std::size_t max, Duration wait) override;
  Status commit(std::span<const Record> confirmed) override;
  Lag lag() override;
  void close() override;

  // First sequence delivered after open() (for logs and tests).
  std::uint64_t start_sequence() const { return start_seq_; }

 private:
  Status recreate_consumer(std::uint64_t start_seq, int retention);
  Record to_record(natsMsg* msg, const AckMeta& meta) const;

  natsConnection* conn_;
  ClusterConfig cluster_;
  StreamSourceOptions options_;
  Ptr<jsCtx> js_;
  Puller puller_;
  std::uint64_t start_seq_ = 0;
  std::uint64_t highest_read_ = 0;
  std::uint64_t next_delivery_ = 1;  // the consumer sequence the next delivery must carry
  std::uint64_t last_acked_ = 0;
  // The newest skipped message not acked yet (its ack waits until nothing before it is in flight).
  std::uint64_t skipped_seq_ = 0;
  std::string skipped_reply_;
  std::uint64_t skipped_total_ = 0;
  Status ack_skipped();
  // (sequence, timestamp) of records read and not yet committed, for lag in seconds.
  std::deque<std::pair<std::uint64_t, std::int64_t>> uncommitted_;
};

}  // namespace mqdr::nats
