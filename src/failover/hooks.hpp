#pragma once
// Runs operator hooks (clients.hooks, fence_hooks): an executable path, no shell, stdin from
// /dev/null, stdout+stderr captured (the last 4 KiB are kept for the log and the event record),
// in a process group of its own. After `timeout` the whole group gets SIGTERM, then SIGKILL 2 s
// later (or at once when `timeout` is shorter), so a hook's children cannot linger either.
// The environment is the daemon's plus the MQDR_* variables given.
// Thread-safety: run_hook may be called from several threads at once (posix_spawn).

#include <chrono>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "mqdr/config.hpp"

namespace mqdr::failover {

struct HookResult {
  std::string path;
  bool ok = false;           // exited with status 0 within the timeout
  int exit_code = -1;        // -1 when it did not exit normally
  int signal = 0;            // the signal that ended it, if any
  bool timed_out = false;
  std::string error;         // could not be started, or why it is not ok
  std::string output;        // tail of stdout+stderr
  std::int64_t duration_ms = 0;

  nlohmann::json to_json() const;
};

HookResult run_hook(const std::string& path, const std::map<std::string, std::string>& env,
                    Duration timeout);

}  // namespace mqdr::failover
