#pragma once
// Publishes records to one target stream (mqdr::Sink) with asynchronous JetStream publishes.
//
// Every message carries Nats-Msg-Id "<source stream>:<sequence>" (the target's duplicate window
// drops a copy published again after a crash), Mqdr-Source-Stream/-Sequence/-Time (source
// position and original timestamp) and Nats-Expected-Last-Msg-Id naming its predecessor: the
// target stores a message only right after the one before it, so a message lost in a broken
// connection can never be overtaken by a later one. When a publish fails, nothing new is sent
// until every outstanding publish has resolved; then the target's last relayed sequence tells
// which records it already holds (confirmed without resending, whatever the duplicate window),
// the first missing one is sent alone as a probe, and once it is stored the rest follow in
// order. Retries back off from 100 ms to 5 s. Records are never dropped: only a record the
// target can never take (larger than its max_msg_size) is reported, as fatal.
//
// Threads: write()/poll()/flush()/close() on the pipeline's thread; PubAcks arrive on cnats'
// reply-subscription thread and are queued for poll().

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "mqdr/sink.hpp"
#include "nats/client.hpp"

namespace mqdr::nats {

struct StreamSinkOptions {
  std::string mirror;         // for logs
  std::string source_stream;  // Msg-Id prefix and Mqdr-Source-Stream
  std::string target_stream;
  std::string origin;         // Mqdr-Origin for messages that carry none (the source cluster)
  Duration publish_timeout{std::chrono::seconds(5)};  // PubAck wait per message
  Duration api_wait{std::chrono::seconds(5)};
  Duration max_backoff{std::chrono::seconds(5)};
};

// Builds the header block published for `r` (without Nats-Expected-Last-Msg-Id and without the
// terminating empty line). Exposed for unit tests.
std::string relay_header_lines(const Record& r, const std::string& source_stream,
                               const std::string& origin = "");
std::string relay_msg_id(const std::string& source_stream, std::uint64_t seq);

class StreamSink : public Sink {
 public:
  StreamSink(natsConnection* conn, ClusterConfig cluster, StreamSinkOptions options);
  ~StreamSink() override;

  Status open() override;
  Status write(std::span<const Record> records, std::uint64_t first_id) override;
  Status poll(Duration wait, const std::function<void(std::uint64_t id)>& confirmed) override;
  Status flush(Duration deadline) override;
  void close() override;

  // The current problem with the target (empty while publishes succeed). Any thread.
  std::string problem() const;
  std::uint64_t outstanding() const { return sent_.size(); }

 private:
  enum class State { queued, sent, failed, done };
  struct Entry {
    std::uint64_t id = 0;
    std::uint64_t seq = 0;
    std::string subject;
    std::string header_lines;  // "NATS/1.0\r\n" + lines, without expectation and final CRLF
    std::string payload;
    std::string msg_id;
    State state = State::queued;
  };
  struct Event {
    natsMsg* msg = nullptr;
    bool ok = false;
    natsStatus err = NATS_OK;
    int code = 0;
    std::string text;
  };
  enum class Mode { normal, recovering, probing };

  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure);
  Status send(Entry& e);
  Status process(Duration wait, const std::function<void(std::uint64_t)>& confirmed);
  void fail(Entry& e, const std::string& why);
  void recover(const std::function<void(std::uint64_t)>& confirmed);
  void resume_after_probe();
  void pop_done();
  void set_problem(std::string text);

  natsConnection* conn_;
  ClusterConfig cluster_;
  StreamSinkOptions options_;
  Ptr<jsCtx> js_;
  Ptr<jsCtx> api_;  // synchronous API calls (stream info, last message)

  std::deque<Entry> entries_;  // unconfirmed-or-not-yet-popped, in id order
  std::uint64_t front_id_ = 0;
  std::unordered_map<natsMsg*, std::uint64_t> sent_;  // in flight -> id
  std::string prev_msg_id_;  // expectation for the next send; empty at the start of a run
  Mode mode_ = Mode::normal;
  bool published_any_ = false;  // cnats' async state exists only after the first publish
  std::uint64_t probe_id_ = 0;
  std::chrono::steady_clock::time_point retry_at_{};
  Duration backoff_{100};
  std::string fatal_;
  std::vector<std::uint64_t> early_confirms_;  // confirmed during flush(), reported by poll()

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;

  mutable std::mutex problem_mu_;
  std::string problem_;
};

}  // namespace mqdr::nats
