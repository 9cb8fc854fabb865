#pragma once
// Loading and validating a config file (SPEC.md "Configuration"). All problems are collected in
// one pass and reported together as `FILE:LINE:COLUMN: key.path: message`.

#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "mqdr/config.hpp"

namespace mqdr::config {

struct Problem {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem is about the whole file
  int column = 0;  // 1-based
  std::string path;     // key path, e.g. "mirrors[0].source" ("" for file-level problems)
  std::string message;  // never contains a secret value
  bool warning = false;  // warnings (e.g. world-readable secret file) do not fail validation

  std::string str() const;  // "FILE:LINE:COLUMN: path: message"
};

// Thrown by load() when at least one non-warning problem was found.
class Error : public std::runtime_error {
 public:
  explicit Error(std::vector<Problem> problems);
  const std::vector<Problem>& problems() const { return problems_; }

 private:
  std::vector<Problem> problems_;
};

struct LoadOptions {
  // Looks up ${NAME}; defaults to getenv. Tests inject their own.
  std::function<std::optional<std::string>(const std::string&)> env;
  // Base for relative *_file paths; defaults to the config file's directory.
  std::optional<std::filesystem::path> base_dir;
};

// Parses and validates. Throws config::Error listing every problem. Warnings are returned through
// `warnings` when given (and otherwise dropped).
Config load(const std::filesystem::path& file, const LoadOptions& options = {},
            std::vector<Problem>* warnings = nullptr);

// Same, from text (the `file` name is used in messages only).
Config load_string(const std::string& text, const std::string& file,
                   const LoadOptions& options = {}, std::vector<Problem>* warnings = nullptr);

// "500ms", "2s", "5m", "1h", "30d" (also combined like "1m30s"); nullopt when malformed.
std::optional<Duration> parse_duration(const std::string& text);

}  // namespace mqdr::config
