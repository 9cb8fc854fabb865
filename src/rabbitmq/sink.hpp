#pragma once
// mqdr::Sink publishing to a RabbitMQ target with publisher confirms. rabbitmq-c 0.11 has no
// confirm helper, so the sink reads basic.ack / basic.nack / basic.return frames itself.
// Publishes are mandatory: a message the target cannot route comes back as basic.return and is
// published again (definitions sync may be catching up); after `max_returns` returns it is parked
// in a durable queue on the target (`mqdr.unroutable.<mirror>`, with its exchange and routing key
// in headers) and reported, never dropped. Nacked messages are published again.
// Owns one AMQP connection (channel 1, confirm mode). Used by one thread (the pipeline's); the
// counters may be read from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mqdr/sink.hpp"
#include "rabbitmq/codec.hpp"
#include "rabbitmq/connection.hpp"

namespace mqdr::rabbitmq {

struct SinkCounters {
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> nacked{0};
  std::atomic<std::uint64_t> returned{0};
  std::atomic<std::uint64_t> parked{0};
};
using SinkCountersPtr = std::shared_ptr<SinkCounters>;

struct SinkOptions {
  std::string mirror;
  std::string origin;           // x-mqdr-origin value for records that have none (source cluster)
  // Records with an "amqp.exchange" attribute came from a queue (shovel): they go to
  // shovel_exchange with their routing key, or, when it is '', to the same-named queue.
  std::string shovel_exchange;
  int max_returns = 5;
  Duration return_retry_delay{std::chrono::seconds(1)};
  std::size_t max_outstanding = 20000;  // unconfirmed publishes before write() waits
  Duration connect_timeout{std::chrono::seconds(10)};
  SinkCountersPtr counters;             // optional
};

class ConfirmSink : public Sink {
 public:
  ConfirmSink(ClusterConfig cluster, SinkOptions options);
  ~ConfirmSink() override;

  Status open() override;
  Status write(std::span<const Record> records, std::uint64_t first_id) override;
  Status poll(Duration wait, const std::function<void(std::uint64_t id)>& confirmed) override;
  Status flush(Duration deadline) override;
  void close() override;

  std::string parking_queue() const { return "mqdr.unroutable." + options_.mirror; }

  // Another connection (the source's, same thread) whose incoming data ends a wait for confirms
  // early: poll() then returns so that the pipeline reads and publishes the deliveries that
  // arrived meanwhile instead of leaving them in the socket until the next confirm. May be null.
  void wake_on(const Connection* other) { wake_ = other; }

 private:
  struct Pending {
    std::uint64_t id = 0;
    Record record;
    std::string exchange;     // where it was published this time
    std::string routing_key;
    int returns = 0;
    bool returned = false;    // a basic.return arrived for this publish
    bool parked = false;      // published to the parking queue
    std::chrono::steady_clock::time_point due{};
  };

  Status publish(Pending p);
  Status publish_all(std::span<const Record> records, std::uint64_t first_id);
  // Reads every frame available, waiting up to `wait` for the first; with `may_wake`, a wait also
  // ends (nothing read) when the wake_on() connection receives something.
  Status pump(Duration wait, bool may_wake = false);
  // Waits up to `wait` until the target or the wake_on() connection (which must be set) has
  // something to read.
  enum class Ready { none, target, source };
  Ready wait_readable(Duration wait);
  Status handle(const amqp_frame_t& frame);
  void settle(std::uint64_t tag, bool multiple, bool ack);
  Status publish_due_retries();
  Status ensure_parking();

  SinkOptions options_;
  Connection conn_;
  Arena arena_;
  std::uint64_t next_seq_ = 1;
  std::map<std::uint64_t, Pending> outstanding_;  // publish sequence number -> message
  std::deque<Pending> retry_;
  std::vector<std::uint64_t> confirmed_;
  bool parking_declared_ = false;
  bool blocked_ = false;
  const Connection* wake_ = nullptr;
  bool wake_armed_ = true;
};

}  // namespace mqdr::rabbitmq
