#pragma once
// A one-line progress bar (percentage, records, rate and ETA) on stderr while a backup, restore
// or verify runs, only when stderr is a terminal (SPEC.md: quiet otherwise). Owns a thread that
// redraws the line from the shared Progress counters every 200 ms; stop() erases nothing and
// ends the line.

#include <string>
#include <thread>

#include "mqdr/backup.hpp"

namespace mqdr::backup {

class ProgressBar {
 public:
  ProgressBar(std::string what, const Progress& progress);  // starts drawing when on a terminal
  ~ProgressBar();
  void stop();

  // The line drawn for these figures (exposed for unit tests).
  static std::string line(const std::string& what, std::uint64_t done, std::uint64_t total,
                          std::uint64_t bytes, double seconds);

 private:
  std::string what_;
  const Progress& progress_;
  std::jthread thread_;
  bool on_ = false;
};

}  // namespace mqdr::backup
