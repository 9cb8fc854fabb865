#pragma once
// Durable files of the failover controller under state_dir/failover/: one state file per group
// (<group>.json, replaced atomically: temp file, fsync, rename, fsync of the directory), one
// append-only event log per group (<group>.events.jsonl), and a lock file that keeps a second
// process on this host from driving the same groups.
// Thread-safety: save/load/append of different groups may run concurrently; one group's calls
// are serialized by the controller.

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace mqdr::failover {

// Writes `content` to `path` so that a reader (or a crash) sees either the old or the new file:
// temp file in the same directory, fsync, rename over `path`, fsync of the directory.
// Throws std::runtime_error naming the path and the system error.
void write_file_atomic(const std::filesystem::path& path, const std::string& content,
                       unsigned mode = 0644);

struct LoadedState {
  std::optional<nlohmann::json> state;  // nullopt: no state file (a group seen for the first time)
  std::string error;                    // non-empty: the file exists but cannot be used
};

class StateStore {
 public:
  // Creates `dir` when missing and takes its lock (flock on dir/lock, held until destruction).
  // Throws std::runtime_error when the directory cannot be used or is locked by another process.
  explicit StateStore(std::filesystem::path dir);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path state_file(const std::string& group) const;
  std::filesystem::path events_file(const std::string& group) const;

  void save(const std::string& group, const nlohmann::json& state);  // throws on IO errors
  // Never throws for a damaged file: it reports it in `error` (truncated, not JSON, unreadable).
  LoadedState load(const std::string& group) const;
  // Moves a damaged state file aside (<group>.json.corrupt-<unix time>) and returns the new path.
  std::filesystem::path quarantine(const std::string& group);
  // Appends one JSON line and fsyncs it. Throws on IO errors.
  void append_event(const std::string& group, const nlohmann::json& entry);

 private:
  std::filesystem::path dir_;
  int lock_fd_ = -1;
};

// A group name made safe as a file name.
std::string file_stem(const std::string& group);

}  // namespace mqdr::failover
