#pragma once
// A secret value (password, token). It never formats or streams its content: logging a Secret
// prints "***", so a secret that reaches a log line by mistake is still not disclosed.

#include <ostream>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace mqdr {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  // The only way to the value: call sites that hand it to a client library are easy to audit.
  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  bool operator==(const Secret& other) const { return value_ == other.value_; }

 private:
  std::string value_;
};

inline std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "***"; }

}  // namespace mqdr

template <>
struct fmt::formatter<mqdr::Secret> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const mqdr::Secret&, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format("***", ctx);
  }
};
