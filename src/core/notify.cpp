#include <systemd/sd-daemon.h>

#include <cstdint>
#include <string>

#include "mqdr/daemon.hpp"

namespace mqdr::notify {

namespace {
void send(const std::string& state) { sd_notify(0, state.c_str()); }
}  // namespace

void ready() { send("READY=1\nSTATUS=running"); }
void stopping() { send("STOPPING=1\nSTATUS=stopping"); }
void reloading() { send("RELOADING=1"); }
void watchdog() { send("WATCHDOG=1"); }
void status(const std::string& text) { send("STATUS=" + text); }

std::chrono::milliseconds watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(usec / 2000);
}

}  // namespace mqdr::notify
