#pragma once
// The mirror worker of a `kind: nats` mirror (one per mirror, made by the supervisor).
//
// Owns: a control connection to each side (stream discovery, config sync, consumer positions,
// native-mode lag), and in relay mode one runner thread per mirrored stream, each with its own
// connections, StreamSource, StreamSink and Pipeline (streams are independent, so one slow or
// broken stream never holds the others back, and streams replicate in parallel).
// run() is called on the supervisor's thread; it refreshes the stream list every
// refresh_interval (new matching streams start replicating), syncs durable consumers every
// consumer_sync_interval, and publishes per-stream figures into the mirror's WorkerStats.
// A stream that fails is retried with backoff by its runner; the worker itself only returns
// when stopped.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "mqdr/broker.hpp"
#include "mqdr/worker.hpp"
#include "nats/client.hpp"
#include "nats/topology.hpp"

namespace mqdr::nats {

class MirrorWorker : public Worker {
 public:
  explicit MirrorWorker(MirrorContext ctx);
  ~MirrorWorker() override;
  Status run(std::stop_token stop) override;

 private:
  struct Runner;
  void refresh(std::stop_token stop);
  void start_runner(const std::string& stream);
  void run_stream(Runner& r, std::stop_token stop);
  Status run_stream_once(Runner& r, std::stop_token stop);
  void sync_native(const std::string& stream);
  void sync_consumers();
  void publish_stats();
  void check_restart_gap(const std::string& stream, std::int64_t duplicates_ns);

  MirrorContext ctx_;
  StreamSelector selector_;
  Connection source_;
  Connection target_;
  Ptr<jsCtx> source_js_;
  Ptr<jsCtx> target_js_;
  std::string source_api_prefix_;  // native mode
  std::map<std::string, std::unique_ptr<Runner>> runners_;
  std::map<std::string, std::string> stream_errors_;  // topology problems by stream
  std::map<std::string, nlohmann::json> native_;      // native mode detail by stream
  std::uint64_t native_last_seq_total_ = 0;
  bool native_seeded_ = false;
  std::int64_t last_heartbeat_ns_ = 0;  // previous run's last sign of life (state_dir)
};

}  // namespace mqdr::nats
