#pragma once
// The RabbitMQ mirror worker: one per `mirrors:` entry between two RabbitMQ clusters.
// run() (the supervisor's thread) syncs definitions once, sets up the capture queues, then moves
// messages with the Pipeline (AmqpSource -> ConfirmSink) until stopped; on a retryable problem
// (a broker down, a missing exchange, wrong credentials) it records the reason in the status and
// tries again with an exponential backoff (1 s .. 30 s) instead of returning, so nothing busy-loops.
// A housekeeping thread of its own (own connections) keeps definitions in line, follows the
// routing keys of direct exchanges, samples the capture queues (size alarm) and trims the
// standby queues. Both threads stop before run() returns.

#include <atomic>
#include <memory>
#include <mutex>
#include <stop_token>

#include <nlohmann/json.hpp>

#include "mqdr/broker.hpp"
#include "mqdr/worker.hpp"
#include "rabbitmq/sink.hpp"

namespace mqdr::rabbitmq {

class DefinitionsSync;
class Management;

struct WorkerOptions {
  Duration max_backoff{std::chrono::seconds(30)};
  Duration housekeeping_interval{std::chrono::seconds(5)};  // capture stats, keys, standby trim
  bool trim_standby = true;  // false: standby depths are only sampled (promotion trims)
};

class MirrorWorker : public Worker {
 public:
  explicit MirrorWorker(MirrorContext ctx, WorkerOptions options = {});
  ~MirrorWorker() override;

  Status run(std::stop_token stop) override;

  // Detail published in the status (also handy for tests).
  nlohmann::json detail() const;

 private:
  Status run_once(std::stop_token stop);
  void housekeeping(std::stop_token stop, std::unique_ptr<DefinitionsSync> defs,
                    std::unique_ptr<Management> src_mgmt, std::unique_ptr<Management> dst_mgmt);
  void publish_detail();

  MirrorContext ctx_;
  WorkerOptions options_;
  SinkCountersPtr counters_;
  mutable std::mutex mu_;
  nlohmann::json capture_ = nlohmann::json::object();
  nlohmann::json definitions_ = nlohmann::json::object();
  nlohmann::json standby_ = nlohmann::json::object();
  bool alarm_ = false;
};

}  // namespace mqdr::rabbitmq
