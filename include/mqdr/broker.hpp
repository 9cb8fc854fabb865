#pragma once
// What each broker kind provides (src/kafka, src/nats, src/rabbitmq), registered by kind in a
// BrokerRegistry at start-up (src/cli wiring). The core, the failover controller and backups
// only use these interfaces; client libraries stay inside their broker's folder.

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mqdr/config.hpp"
#include "mqdr/sink.hpp"
#include "mqdr/source.hpp"
#include "mqdr/stats.hpp"
#include "mqdr/worker.hpp"

namespace mqdr {

using ConfigPtr = std::shared_ptr<const Config>;

// Everything a mirror worker needs; copies, so a reload never changes a running worker.
struct MirrorContext {
  ConfigPtr config;
  MirrorConfig mirror;
  ClusterConfig source;
  ClusterConfig target;
  WorkerStatsPtr stats;
  std::filesystem::path state_dir;  // daemon.state_dir/mirrors/<name>, created by the daemon
};

struct ProbeResult {
  bool ok = false;
  double latency_ms = 0;
  std::string message;  // why it failed; no secrets
};

// Proves a cluster serves clients (not only that a port is open). Keeps its connection between
// calls; each check() returns within `timeout`. Called from one thread at a time.
class Probe {
 public:
  virtual ~Probe() = default;
  virtual ProbeResult check(Duration timeout) = 0;
};
using ProbePtr = std::unique_ptr<Probe>;

struct VerifyResult {
  bool equal = true;
  std::string first_difference;  // names item, partition and position of the first difference
  nlohmann::json detail = nlohmann::json::object();  // per item: counts and digests both sides
  std::vector<std::string> unchecked;                // what could not be compared, and why
};

// The failover controller runs a mirror's reverse (source and target swapped) under the name
// `<mirror>.reverse`; the reverse of a reverse mirror is the forward one. Adapters that must
// prepare the mirror that will carry writes back (e.g. RabbitMQ capture queues on the promoted
// side) use the same names.
inline std::string opposite_mirror_name(const std::string& mirror) {
  constexpr std::string_view kSuffix = ".reverse";
  if (mirror.size() > kSuffix.size() && mirror.ends_with(kSuffix)) {
    return mirror.substr(0, mirror.size() - kSuffix.size());
  }
  return mirror + std::string(kSuffix);
}

// Drill markers (`mqdr drill`, docs/failover.md "Drills"). Each broker kind has a channel of
// mqdr's own that its mirrors always carry, so that a drill measures the real data path without
// touching the application's topics, streams or queues:
//   Kafka     the heartbeat topic `mqdr-heartbeats` (partition 0); the drill's consumer group;
//   NATS      the stream `MQDR_DRILL` (subjects `mqdr.drill.>`); the drill's durable consumer;
//   RabbitMQ  the fanout exchange `mqdr.drill`, bound on the source into the mirror's capture
//             queue of its first exchange, routed on both sides to the queue `mqdr.drill`.
// A drill writes `count` markers on the source (each acknowledged by it), lets its consumer take
// and commit the first `consume` of them there, and after the switch checks on the target which
// markers arrived (none lost) and what the same consumer receives when it resumes there.
inline constexpr std::string_view kDrillName = "mqdr-drill";  // prefix of drill consumer names
// Whether `mirror` (or its reverse) connects a pair of a failover group: only those carry drill
// markers (a mirror outside any group never relays the NATS drill stream).
bool carries_drill_markers(const Config& config, const MirrorConfig& mirror);
std::string drill_marker(const std::string& drill_id, int n);
// The marker number when `text` is a marker of `drill_id`.
std::optional<int> parse_drill_marker(std::string_view text, const std::string& drill_id);

struct DrillMarkers {
  std::string id;     // unique per drill and direction; [a-z0-9-] only
  std::string consumer;  // the drill consumer's name (group id, durable name)
  int written = 0;    // markers acknowledged by the source (numbers 0..written-1)
  int consumed = 0;   // the first `consumed` taken and committed by the consumer on the source
  nlohmann::json detail = nlohmann::json::object();  // where they are (offsets, sequences)
};

struct DrillCheck {
  int on_target = 0;          // markers of this drill found on the target
  std::vector<int> lost;      // acknowledged by the source, not on the target (data loss)
  bool resume_checked = false;
  std::string resume_unchecked;  // why the resume could not be checked
  int resumed = 0;               // unconsumed markers the resuming consumer received
  std::vector<int> resume_missing;  // unconsumed markers it did not receive (loss to it)
  int redelivered = 0;           // consumed markers it received again (duplicates)
  nlohmann::json detail = nlohmann::json::object();
};
nlohmann::json to_json(const DrillCheck& check);
// Fills the consumer-resume part of `out` from what the resuming consumer received:
// `delivered(n)` for each marker n: resumed / resume_missing (unconsumed) and redelivered
// (consumed on the source).
void count_resume(const DrillMarkers& markers, const std::function<bool(int)>& delivered,
                  DrillCheck& out);

// Failover-time operations on one mirror (source = primary side, target = standby side). Each
// call opens what it needs and returns within its deadline. Called by the failover driver.
class MirrorOps {
 public:
  virtual ~MirrorOps() = default;
  // Current lag of the target behind the source (needs the source up).
  virtual Lag lag(Duration timeout) = 0;
  // Carry positions over now: Kafka group offsets, NATS durable consumers. Idempotent.
  virtual Status final_sync(Duration deadline) = 0;
  // Make the target usable as the primary: NATS native removes the stream's source, RabbitMQ
  // trims standby queues to the primary's last observed depth plus the margin.
  virtual Status promote(Duration deadline) = 0;
  // Compare source and target up to the mirrored position (mqdr verify --mirror).
  virtual VerifyResult verify(Duration deadline) = 0;
  // What the source holds beyond what reached the target (reported when an old primary returns).
  virtual nlohmann::json unreplicated(Duration deadline) = 0;
  // The mirror no longer runs in this direction (a switch stopped it and its source side is not
  // the active one any more): release what it keeps on its source for replication, e.g. the
  // RabbitMQ capture queues, which would otherwise go on collecting what the opposite mirror
  // publishes there. Never drops what was not replicated: what still holds messages is only
  // detached and reported. Returns what was done (JSON for the switch record).
  virtual nlohmann::json retire(Duration /*deadline*/) { return nlohmann::json::object(); }

  // Drill markers (see DrillMarkers). prepare: the marker channel exists on both sides and the
  // running mirror carries it (waits for the mirror to pick it up, within the deadline).
  // write: `count` markers on the source, acknowledged, and the first `consume` of them taken
  // and committed there by `markers.consumer`. check: on the target, after a switch.
  virtual Status drill_prepare(Duration deadline);
  virtual Status drill_write(DrillMarkers& markers, int count, int consume, Duration deadline);
  virtual Status drill_check(const DrillMarkers& markers, DrillCheck& out, Duration deadline);
};
using MirrorOpsPtr = std::unique_ptr<MirrorOps>;

// One broker kind's factories. Any may be empty while that part is not built yet; callers check.
struct BrokerKind {
  std::function<WorkerPtr(const MirrorContext&)> make_mirror;
  std::function<ProbePtr(const ClusterConfig&)> make_probe;
  std::function<MirrorOpsPtr(const MirrorContext&)> make_mirror_ops;
};

class BrokerRegistry {
 public:
  void add(ClusterKind kind, BrokerKind broker) { kinds_[kind] = std::move(broker); }
  const BrokerKind* find(ClusterKind kind) const {
    auto it = kinds_.find(kind);
    return it == kinds_.end() ? nullptr : &it->second;
  }

 private:
  std::map<ClusterKind, BrokerKind> kinds_;
};

}  // namespace mqdr
