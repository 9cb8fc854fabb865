#include "backup/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

namespace mqdr::backup {

namespace {
std::string human_duration(double s) {
  const auto t = static_cast<long long>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60)
                   : fmt::format("{}:{:02}", t / 60, t % 60);
}
}  // namespace

std::string ProgressBar::line(const std::string& what, std::uint64_t done, std::uint64_t total,
                              std::uint64_t bytes, double seconds) {
  constexpr int kWidth = 24;
  // Rates over less than a fifth of a second say nothing.
  const bool timed = seconds >= 0.2;
  const double rate = timed ? static_cast<double>(done) / seconds : 0;
  const double mbps = timed ? static_cast<double>(bytes) / seconds / 1e6 : 0;
  if (total == 0) {
    return fmt::format("{}: {} records  {:.0f} rec/s  {:.1f} MB/s  {}", what, done, rate, mbps,
                       human_duration(seconds));
  }
  const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  const int filled = static_cast<int>(frac * kWidth);
  const std::string eta =
      rate > 0 && done < total ? human_duration(static_cast<double>(total - done) / rate) : "--:--";
  return fmt::format("{} [{}{}] {:3.0f}% {}/{} records  {:.0f} rec/s  {:.1f} MB/s  ETA {}", what,
                     std::string(static_cast<std::size_t>(filled), '#'),
                     std::string(static_cast<std::size_t>(kWidth - filled), '-'), frac * 100, done,
                     total, rate, mbps, eta);
}

ProgressBar::ProgressBar(std::string what, const Progress& progress)
    : what_(std::move(what)), progress_(progress), on_(::isatty(STDERR_FILENO) != 0) {
  if (!on_) return;
  thread_ = std::jthread([this](std::stop_token stop) {
    const auto t0 = std::chrono::steady_clock::now();
    while (!stop.stop_requested()) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const std::string l = line(what_, progress_.records.load(), progress_.total_records.load(),
                                 progress_.bytes.load(), s);
      std::fprintf(stderr, "\r%s\033[K", l.c_str());
      std::fflush(stderr);
      for (int i = 0; i < 4 && !stop.stop_requested(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string l = line(what_, progress_.records.load(), progress_.total_records.load(),
                               progress_.bytes.load(), s);
    std::fprintf(stderr, "\r%s\033[K\n", l.c_str());
  });
}

ProgressBar::~ProgressBar() { stop(); }

void ProgressBar::stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

}  // namespace mqdr::backup
