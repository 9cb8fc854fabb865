#pragma once
// mqdr::Source over AMQP queues: consumes the capture queues of mirrored exchanges (or, in
// shovel mode, the application's queues) with manual acks and a prefetch window, and acks a
// delivery only when the pipeline says the target confirmed it (basic.ack multiple=true on the
// highest confirmed delivery tag). Owns one AMQP connection: channel 1 consumes, channel 2 runs
// passive declares for lag. Used by one thread (the pipeline's).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mqdr/source.hpp"
#include "rabbitmq/connection.hpp"

namespace mqdr::rabbitmq {

struct ConsumeSpec {
  std::string queue;  // queue consumed on the source
  std::string item;   // Record::item: the exchange (capture) or the queue (shovel)
  bool shovel = false;  // queue messages: records carry "amqp.exchange" (see ConfirmSink)
};

struct SourceOptions {
  std::string mirror;
  std::vector<ConsumeSpec> queues;
  int prefetch = 1000;
  // Deliveries whose x-mqdr-origin header equals this are acked and skipped: they came from the
  // target in the first place (active-active pairs). Empty = keep everything.
  std::string skip_origin;
  Duration connect_timeout{std::chrono::seconds(10)};
};

class AmqpSource : public Source {
 public:
  AmqpSource(ClusterConfig cluster, SourceOptions options);
  ~AmqpSource() override;

  Status open() override;
  Status read(Batch& out, std::size_t max, Duration wait) override;
  Status commit(std::span<const Record> confirmed) override;
  Lag lag() override;
  void close() override;

  std::uint64_t skipped() const { return skipped_; }
  // The consuming connection (for ConfirmSink::wake_on).
  const Connection& connection() const { return conn_; }

 private:
  Status handle_other_frame();

  SourceOptions options_;
  Connection conn_;
  std::map<std::string, const ConsumeSpec*> spec_by_tag_;  // consumer tag -> spec
  std::uint64_t epoch_ = 0;                         // bumped per open(); stored in source_token
  std::uint64_t read_count_ = 0;
  std::uint64_t acked_count_ = 0;
  std::uint64_t skipped_ = 0;
  std::chrono::steady_clock::time_point backlog_since_{};
  bool backlog_ = false;
};

}  // namespace mqdr::rabbitmq
