#pragma once
// The long-running process behind `mqdr run`: owns the config, the state-dir lock, the supervisor
// with one worker per mirror, the cluster monitor, the failover controller and the admin server.
// Signals: SIGTERM/SIGINT stop gracefully (workers drain and commit within
// daemon.shutdown_timeout); SIGHUP reloads the config (only changed mirrors restart; an invalid
// new config is logged and the running one stays).

#include <filesystem>
#include <memory>
#include <string>

#include "mqdr/broker.hpp"

namespace mqdr {

class StateLock {
 public:
  // Takes an exclusive flock on state_dir/mqdr.lock (creating state_dir if needed). Throws
  // std::runtime_error naming the directory and the holder's pid when another process holds it.
  explicit StateLock(const std::filesystem::path& state_dir);
  ~StateLock();
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;

 private:
  int fd_ = -1;
};

// systemd notification (no-ops when NOTIFY_SOCKET is not set).
namespace notify {
void ready();
void stopping();
void reloading();
void watchdog();
void status(const std::string& text);
// The interval at which WATCHDOG=1 must be sent (half of WATCHDOG_USEC), or 0 when disabled.
std::chrono::milliseconds watchdog_interval();
}  // namespace notify

// Configures the default spdlog logger: level and format (text or JSON lines on stderr).
// JSON lines carry `mirror`, `cluster`, `group` and `plan` fields lifted from the message's
// leading `key=value` words.
void setup_logging(const std::string& level, bool json);

// Runs the daemon until SIGTERM/SIGINT. Returns the process exit code (0 clean stop, 1 runtime
// failure, 2 configuration error).
int run_daemon(const std::filesystem::path& config_file, const BrokerRegistry& registry);

}  // namespace mqdr
