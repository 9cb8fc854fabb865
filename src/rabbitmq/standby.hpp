#pragma once
// Standby queue trimming. Acks are not replicated, so a standby queue fed by exchange mirroring
// holds every message ever routed to it. For each mirrored queue, mqdr samples the standby's
// depth FIRST and the primary's depth (ready, live by a passive declare, plus unacknowledged from
// the management API) AFTER it, then removes from the head of the standby queue whatever exceeds
// primary depth + margin. The standby only ever holds a prefix of what the primary received, so
// with exact counts that order never removes a message the primary still holds (FIFO queues).
// Counts are not exact: RabbitMQ answers a passive declare ahead of deliveries still queued in
// the queue process's mailbox (at most its credit-flow window, 400 messages per publishing
// channel), and the unacked count is up to 5 s old. The margin must cover those, plus non-FIFO
// consumption (priorities, requeues). See docs/rabbitmq.md for the exact guarantee.
// The last primary depths are persisted (standby-depths.json in the mirror's state dir) so that
// promotion can trim even when the primary is gone.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "mqdr/config.hpp"
#include "mqdr/status.hpp"
#include "rabbitmq/connection.hpp"
#include "rabbitmq/management.hpp"

namespace mqdr::rabbitmq {

struct QueueSample {
  std::int64_t primary = -1;    // ready + unacked on the primary
  std::int64_t standby = -1;    // ready on the standby
  std::int64_t trimmed = 0;     // removed from the standby by the last trim
  std::int64_t sampled_at_ms = 0;  // unix ms of the primary sample
};

class StandbyTrimmer {
 public:
  StandbyTrimmer(std::string mirror, std::filesystem::path state_dir, std::int64_t margin);

  enum class Mode {
    sample,   // sample only
    trim,     // trim where the primary was sampled in this same pass (after the standby)
    promote,  // trim; where the primary cannot be sampled now, use its last persisted depth
  };

  // Samples every queue in `queues` (standby first, then primary) and trims per `mode`.
  // `primary_conn` may be null or closed when the primary is gone. Persists the samples.
  Status run(const std::set<std::string>& queues, Connection* primary_conn,
             Management* primary_mgmt, Connection& standby_conn, Mode mode, Duration deadline);

  const std::map<std::string, QueueSample>& samples() const { return samples_; }
  nlohmann::json to_json() const;
  Status load();  // persisted samples (promotion without the primary)

 private:
  // Removes `count` messages from the head of `queue` on `conn` (a channel of its own). Returns how many
  // were removed in `removed`. run()'s inspection channel must be open on `conn`: it asks the
  // queue's depth when deliveries pause.
  static Status remove_head(Connection& conn, const std::string& queue, std::int64_t count,
                            Duration deadline, std::int64_t& removed);

  Status save() const;

  std::string mirror_;
  std::filesystem::path file_;
  std::int64_t margin_;
  std::map<std::string, QueueSample> samples_;
};

}  // namespace mqdr::rabbitmq
