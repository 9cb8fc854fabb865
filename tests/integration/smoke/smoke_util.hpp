// Small helpers shared by the smoke tests: unique names and bounded waits.
#pragma once

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

namespace mqdr::test::smoke {

// A name nobody else uses in this run or an earlier one: PREFIX + 12 hex digits.
inline std::string unique_name(const std::string& prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                          static_cast<unsigned long long>(
                                              std::chrono::steady_clock::now().time_since_epoch().count())};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%012llx", static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
  return prefix + buf;
}

class Deadline {
 public:
  explicit Deadline(std::chrono::milliseconds budget)
      : end_(std::chrono::steady_clock::now() + budget) {}
  bool expired() const { return std::chrono::steady_clock::now() >= end_; }

 private:
  std::chrono::steady_clock::time_point end_;
};

}  // namespace mqdr::test::smoke
