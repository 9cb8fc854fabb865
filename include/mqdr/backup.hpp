#pragma once
// Backups (SPEC.md "Backups on disk", docs/backups.md): a backup is a pipeline from a broker into
// zstd segment files with a manifest, a restore a pipeline from those files into a cluster of the
// same kind, and verify rechecks every checksum and the chain of incrementals.
//
// Each broker kind contributes a BackupReader (what a backup reads from a live cluster) and a
// RestoreTarget (how a restore writes into one); src/backup/{kafka,nats,rabbitmq}.cpp make them.
// The engine functions are called from one thread (the CLI's or the scheduler's worker) and
// return within a bounded time after `stop` is requested.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mqdr/config.hpp"
#include "mqdr/record.hpp"
#include "mqdr/sink.hpp"
#include "mqdr/stats.hpp"

namespace mqdr {
class Daemon;
class DaemonExtension;
}

namespace mqdr::backup {

// A partition (or stream, or queue) of a live cluster: positions [first, end) are readable now.
struct PartitionHead {
  std::string item;
  std::int32_t partition = 0;
  std::int64_t first = 0;
  std::int64_t end = 0;
};

// Reads a plan's items from a live cluster. Made per backup run; one thread.
class BackupReader {
 public:
  virtual ~BackupReader() = default;
  // The plan's items now (sorted by item, partition). Throws std::runtime_error.
  virtual std::vector<PartitionHead> heads() = 0;
  // Kind-specific topology of `items` (topic configs and partition counts, stream configs,
  // definitions). Throws std::runtime_error.
  virtual nlohmann::json topology(const std::vector<std::string>& items) = 0;
  // Kind-specific consumer positions (group offsets, durable consumers). Throws.
  virtual nlohmann::json positions(const std::vector<std::string>& items) = 0;
  // Hands every record of `head` from position `from` up to head.end to `out` in order, until
  // `out` returns false. Returns where the next incremental starts. Throws std::runtime_error.
  virtual std::int64_t read(const PartitionHead& head, std::int64_t from,
                            const std::function<bool(Record&)>& out) = 0;
  // False when the kind has no stable positions (RabbitMQ queues): every backup then holds the
  // current contents, and a restore replays only the newest backup's records.
  virtual bool positional() const { return true; }
};

// --rename OLD=NEW: item names on the target.
using Renames = std::map<std::string, std::string>;
inline std::string renamed(const Renames& r, const std::string& item) {
  auto it = r.find(item);
  return it == r.end() ? item : it->second;
}

// Where to resume an item/partition on a target: records of the chain before this index, or at
// or before this position, are already there.
struct Resume {
  std::uint64_t skip_count = 0;
  std::int64_t skip_through = -1;
};

// Source positions of the restored records per (target item, partition), in order, and the
// state the target's prepare() returned (base offsets ...): enough to translate positions.
struct RestoredPositions {
  std::map<std::pair<std::string, std::int32_t>, std::vector<std::int64_t>> positions;
  std::map<std::pair<std::string, std::int32_t>, nlohmann::json> state;
};

// Writes a backup chain into a live cluster. One thread.
class RestoreTarget {
 public:
  virtual ~RestoreTarget() = default;
  // Recreates the items of `topology` (original names) under their renamed names. Throws.
  virtual void apply_topology(const nlohmann::json& topology, const Renames& renames) = 0;
  // State of a target item/partition to remember before anything is written to it (Kafka's
  // base offset, a queue's base depth); `saved` is what an interrupted run remembered. Throws.
  virtual nlohmann::json prepare(const std::string& item, std::int32_t partition,
                                 const nlohmann::json* saved) = 0;
  // What of item/partition is already on the target. Throws.
  virtual Resume resume(const std::string& item, std::int32_t partition,
                        const nlohmann::json& state) = 0;
  // The sink records go through (Record::item is the target name). `origin` = backup's cluster.
  virtual SinkPtr make_sink(const std::string& origin) = 0;
  // Consumer positions after every record landed. Throws.
  virtual void apply_positions(const nlohmann::json& positions, const Renames& renames,
                               const RestoredPositions& restored) = 0;
};

using ReaderFactory = std::function<std::unique_ptr<BackupReader>(const BackupPlanConfig&, const ClusterConfig&)>;
using TargetFactory = std::function<std::unique_ptr<RestoreTarget>(const ClusterConfig&)>;
std::unique_ptr<BackupReader> make_reader(const BackupPlanConfig& plan, const ClusterConfig& cluster);
std::unique_ptr<RestoreTarget> make_target(const ClusterConfig& cluster);

// Live progress of a run (read by the progress bar and the scheduler status from other threads).
struct Progress {
  std::atomic<std::uint64_t> records{0}, bytes{0};
  std::atomic<std::uint64_t> total_records{0}, total_bytes{0};  // 0 = unknown
};

struct BackupResult {
  std::string name;
  std::filesystem::path dir;
  bool full = true;
  std::uint64_t records = 0, raw_bytes = 0, bytes = 0;
  double seconds = 0;
};

// Takes one backup of `plan` into plan.dir/plan.name/. Incremental unless `full` or there is no
// complete backup to continue. Throws std::runtime_error; on any failure (or stop) the temporary
// directory is removed and nothing that looks complete is left.
BackupResult take_backup(const BackupPlanConfig& plan, const ClusterConfig& cluster, bool full,
                         BackupReader& reader, Progress* progress, std::stop_token stop = {});

// Deletes what retention allows in plan.dir/plan.name/ (and temporary directories of runs that
// died); returns the names deleted.
std::vector<std::string> apply_retention(const BackupPlanConfig& plan,
                                         std::chrono::system_clock::time_point now);

struct VerifyReport {
  bool ok = true;
  std::string problem;  // the first one: file, item, partition, position and what is wrong
  std::uint64_t records = 0, segments = 0, backups = 0;
};
// Rechecks a backup and its chain of parents (sibling directories). Throws std::runtime_error
// only when the backup cannot be read at all (I/O); corruption is a report.
VerifyReport verify_backup(const std::filesystem::path& backup_dir, Progress* progress = nullptr);

struct RestoreOptions {
  std::filesystem::path backup_dir;  // the newest backup of the chain to restore
  Renames renames;
  std::filesystem::path checkpoint;  // file remembering an interrupted restore
};
struct RestoreResult {
  std::uint64_t records = 0, skipped = 0;
  std::vector<std::string> chain;
  double seconds = 0;
};
// Verifies the chain, then replays it into `target`. Throws std::runtime_error.
RestoreResult restore(const RestoreOptions& options, RestoreTarget& target, Progress* progress,
                      std::stop_token stop = {});

// The CLI: `mqdr backup`, `mqdr restore`, and the `verify --backup` function (exit code).
void register_commands();
int verify_command(const std::string& dir);

// The daemon's backup scheduler (nullptr when the config has no backup plans).
std::unique_ptr<DaemonExtension> make_extension(Daemon& daemon, std::shared_ptr<const Config> config);

}  // namespace mqdr::backup
