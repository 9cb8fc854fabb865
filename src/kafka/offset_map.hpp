#pragma once
// The exact source -> target offset mapping of a Kafka mirror, per partition, stored as runs:
// a run says "source offsets [src, src+len) landed at target offsets [tgt, tgt+len)". A new run
// starts at every gap (compaction, aborted transactions, retention, skipped loop records) and
// when a record is mirrored again after a restart (the newest copy wins, so a translated offset
// never makes a consumer read a record twice).
//
// Persisted on the target in a compacted topic, one record per run:
//   key   "<target topic>|<partition>|<src>"     value "<tgt> <len>"   (tombstone = run removed)
// Pure logic, no IO. Not thread-safe: owned by one thread.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mqdr::kafka {

struct Run {
  std::int64_t src = 0;
  std::int64_t tgt = 0;
  std::int64_t len = 0;
  bool operator==(const Run&) const = default;
};

class PartitionMap {
 public:
  // Source offset `src` is now at target offset `tgt`. Both are expected to grow; an older
  // source offset (re-mirrored after a restart) or a smaller target offset (target topic
  // recreated) drops the runs it contradicts.
  void add(std::int64_t src, std::int64_t tgt);

  // Applies a persisted run (or its removal when `run` is empty).
  void put(std::int64_t src_start, const std::optional<Run>& run);

  // A committed source offset (the next record a consumer would read) -> the target offset a
  // consumer must resume from to read exactly the records it had not consumed yet. Offsets in a
  // gap move to the next mirrored record; past the end, to just after the last mirrored one.
  std::optional<std::int64_t> to_target(std::int64_t committed_src) const;
  // The reverse (failback): a committed target offset -> the source offset to resume from.
  std::optional<std::int64_t> to_source(std::int64_t committed_tgt) const;

  // Runs whose persisted form changed since the last call: (src start, run or nullopt = removed).
  std::vector<std::pair<std::int64_t, std::optional<Run>>> take_changes();

  const std::vector<Run>& runs() const { return runs_; }
  bool empty() const { return runs_.empty(); }
  // Next source offset after the last mapped one (-1 when empty).
  std::int64_t src_end() const { return runs_.empty() ? -1 : runs_.back().src + runs_.back().len; }
  std::int64_t tgt_end() const { return runs_.empty() ? -1 : runs_.back().tgt + runs_.back().len; }

 private:
  void drop_from_src(std::int64_t src);
  void drop_from_tgt(std::int64_t tgt);
  void touch(std::int64_t src_start) { changed_[src_start] = true; }
  void remove(std::int64_t src_start) { changed_[src_start] = false; }

  std::vector<Run> runs_;                 // ascending in src and in tgt
  std::map<std::int64_t, bool> changed_;  // src start -> present (true) or removed (false)
};

// Translation of a committed offset of the mirror's source partition into its target partition
// when the source itself is partly a copy made by the opposite mirror (failback: B -> A after a
// failover A -> B). `forward` is the opposite mirror's map for this partition (its target offsets
// are our source offsets), `own` is ours. Offsets inside the copied region go back to where the
// records came from (exact); beyond it, through our own map, or to the end of the copied region
// when we have not copied anything yet. nullopt when neither map knows the partition.
std::optional<std::int64_t> translate_back(const PartitionMap* forward, const PartitionMap* own,
                                           std::int64_t committed);

class OffsetMap {
 public:
  using Key = std::pair<std::string, std::int32_t>;  // target topic, partition

  PartitionMap& partition(const std::string& topic, std::int32_t p) { return parts_[{topic, p}]; }
  const PartitionMap* find(const std::string& topic, std::int32_t p) const {
    auto it = parts_.find({topic, p});
    return it == parts_.end() ? nullptr : &it->second;
  }
  const std::map<Key, PartitionMap>& partitions() const { return parts_; }

  // Applies one persisted record; false when the key or value is malformed (ignored).
  bool apply(const std::string& key, const std::optional<std::string>& value);

  static std::string encode_key(const std::string& topic, std::int32_t p, std::int64_t src);
  static std::string encode_value(const Run& run);

 private:
  std::map<Key, PartitionMap> parts_;
};

}  // namespace mqdr::kafka
