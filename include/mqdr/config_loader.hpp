#pragma once
// Loading and validating a config file (SPEC.md "Configuration"). All problems are collected in
// one pass and reported together as `FILE:LINE:COLUMN: key.path: message`.

#include <cstdint>
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

  // "FILE:LINE:COLUMN: path: message"; "FILE: message" for file-level problems; warnings say
  // "warning: " before the message.
  std::string str() const;
};

// Thrown by load() when at least one non-warning problem was found. problems() holds the
// warnings too, in file order; what() is every problem's str(), one per line.
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
  // Base for relative paths (*_file keys, state_dir, dir, hooks, ...); defaults to the config
  // file's directory. Every path in the loaded Config is absolute.
  std::optional<std::filesystem::path> base_dir;
  // false: check everything that does not depend on the host that will run the config (for
  // validating a deployment's config on another machine, e.g. in CI): files named by `*_file`
  // and `tls.*` keys and hooks are not opened, and an unset ${NAME} without a default stands for
  // the text "NAME". `mqdr validate` checks the document this way first, then reports what this
  // host lacks separately (warnings, or errors with --strict).
  bool host_checks = true;
};

// Parses and validates. Throws config::Error listing every problem. Warnings are returned through
// `warnings` when given (and otherwise dropped).
Config load(const std::filesystem::path& file, const LoadOptions& options = {},
            std::vector<Problem>* warnings = nullptr);

// Same, from text (the `file` name is used in messages only).
Config load_string(const std::string& text, const std::string& file,
                   const LoadOptions& options = {}, std::vector<Problem>* warnings = nullptr);

// "500ms", "2s", "5m", "1h", "30d" (also combined like "1m30s", units from largest to smallest,
// each at most once); "0" alone is zero; a leading '-' makes it negative. nullopt when malformed
// or out of range.
std::optional<Duration> parse_duration(const std::string& text);

// The inverse, shortest form: 90000ms -> "1m30s", 0 -> "0s".
std::string format_duration(Duration d);

// Files larger than this are refused (a config is a few KiB; this catches wrong paths).
inline constexpr std::uintmax_t kMaxConfigBytes = 16U * 1024 * 1024;

// The configuration reference in Markdown, generated from the same key tables that drive parsing
// and validation. docs/configuration.md is this text (a unit test keeps them equal); regenerate
// it with the `mqdr_config_docgen` target: `mqdr_config_docgen > docs/configuration.md`.
std::string reference_markdown();

}  // namespace mqdr::config
