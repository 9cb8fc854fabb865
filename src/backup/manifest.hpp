#pragma once
// The manifest of one backup and the logic over a plan's backups that needs no broker: names,
// listing, chains of incrementals, retention and the schedule. Pure functions over plain
// structs (the clock is a parameter), any thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mqdr::backup {

using SysClock = std::chrono::system_clock;
using TimePoint = SysClock::time_point;

inline constexpr int kFormatVersion = 1;
inline constexpr const char* kManifestFile = "manifest.json";

struct SegmentInfo {
  std::string file;  // relative to the backup directory
  std::int64_t first = -1, last = -1;
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;  // compressed size of the file
  std::string sha256;
};

struct PartitionInfo {
  std::int32_t partition = 0;
  std::int64_t first = -1, last = -1;  // positions of the first/last record held (-1 none)
  std::int64_t next = 0;  // where the next incremental starts (kind-specific position)
  std::uint64_t records = 0;
  std::vector<SegmentInfo> segments;
};

struct ItemInfo {
  std::string name;
  std::vector<PartitionInfo> partitions;
};

struct Manifest {
  int format = kFormatVersion;
  std::string name;  // directory name, e.g. 20261125T020000Z-full
  std::string plan, cluster, kind;
  bool full = true;
  std::string parent;  // name of the parent backup (incrementals)
  std::string started_at, completed_at;  // RFC 3339 UTC
  nlohmann::json topology = nlohmann::json::object();
  nlohmann::json positions = nlohmann::json::object();
  std::vector<ItemInfo> items;
  std::uint64_t records = 0, raw_bytes = 0, bytes = 0;

  const ItemInfo* item(const std::string& n) const;
};

// JSON with a "manifest_sha256" over the rest of the document (canonical dump).
nlohmann::json to_json(const Manifest& m);
// Parses and checks the manifest checksum; throws std::runtime_error saying what is wrong.
Manifest manifest_from_json(const nlohmann::json& j);
Manifest read_manifest(const std::filesystem::path& backup_dir);
// Writes manifest.json durably (temporary file, fsync, rename).
void write_manifest(const std::filesystem::path& backup_dir, const Manifest& m);

// "20261125T020000Z" (UTC, seconds) and back.
std::string compact_time(TimePoint t);
std::optional<TimePoint> parse_compact_time(const std::string& s);
std::string rfc3339(TimePoint t);
// "<compact time>-full" / "-incremental".
std::string backup_name(TimePoint t, bool full);
// Directory names a backup in progress uses ('.' prefix: never listed as a backup).
std::string temp_name(const std::string& name);

// Item names as directory names: bytes other than [A-Za-z0-9._-] are %XX, and a leading '.' too.
std::string encode_item(const std::string& item);
// "ITEM/PARTITION-FIRSTPOS.seg.zst" as SPEC.md (".seg" when not compressed).
std::string segment_path(const std::string& item, std::int32_t partition, std::int64_t first,
                         bool compressed = true);

// One complete backup of a plan directory, as listed.
struct BackupEntry {
  std::string name;
  bool full = true;
  std::string parent;
  TimePoint time;  // from the name
};

// Complete backups of a plan directory (those with a readable manifest), oldest first.
// Directories whose manifest cannot be read are skipped and reported in `broken` if given.
std::vector<BackupEntry> list_backups(const std::filesystem::path& plan_dir,
                                      std::vector<std::string>* broken = nullptr);

// The chain ending at `name`: its full backup first, then each incremental in order. Throws
// std::runtime_error naming the missing link.
std::vector<std::string> chain_of(const std::vector<BackupEntry>& backups, const std::string& name);

// Backups to delete: complete at least `retention` ago, not the newest, and not an ancestor of
// any backup that is kept (a retained incremental's whole chain stays).
std::vector<std::string> retention_victims(const std::vector<BackupEntry>& backups, TimePoint now,
                                           std::chrono::milliseconds retention);

// What the schedule wants now.
struct ScheduleDecision {
  enum class Kind { none, full, incremental } kind = Kind::none;
  TimePoint next_due;  // when something is due next (kind none)
};
ScheduleDecision schedule(const std::vector<BackupEntry>& backups, TimePoint now,
                          std::chrono::milliseconds full_every,
                          std::chrono::milliseconds incremental_every);

}  // namespace mqdr::backup
