#pragma once
// Result of an operation on the data path: ok, retryable (a later attempt may succeed) or fatal
// (the worker stops and reports it). Exceptions are for start-up and configuration; the data path
// returns Status values.

#include <string>
#include <utility>

namespace mqdr {

class Status {
 public:
  enum class Code { ok, retry, fatal };

  Status() = default;
  static Status ok() { return {}; }
  static Status retry(std::string message) { return Status(Code::retry, std::move(message)); }
  static Status fatal(std::string message) { return Status(Code::fatal, std::move(message)); }

  Code code() const { return code_; }
  bool is_ok() const { return code_ == Code::ok; }
  bool is_retry() const { return code_ == Code::retry; }
  bool is_fatal() const { return code_ == Code::fatal; }
  explicit operator bool() const { return is_ok(); }
  const std::string& message() const { return message_; }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::ok;
  std::string message_;
};

}  // namespace mqdr
