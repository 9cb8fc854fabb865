#pragma once
// Helpers for the config tests: a temporary directory, files with a mode, an injected
// environment, and loading text that is expected to fail or succeed.

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mqdr/config_loader.hpp"

namespace mqdr::config::test {

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to path()/name (creating parent directories) with `mode`.
  std::filesystem::path write(const std::string& name, const std::string& content,
                              mode_t mode = 0600) const;

 private:
  std::filesystem::path path_;
};

using Env = std::map<std::string, std::string>;

LoadOptions options(const Env& env, const std::filesystem::path& base_dir);

// The problems of a config expected to fail (empty when it loaded).
std::vector<Problem> problems_of(const std::string& yaml, const Env& env = {},
                                 const std::filesystem::path& base_dir = "/nonexistent");

// Every problem, one per line (for failure messages).
std::string dump(const std::vector<Problem>& problems);

std::string read_file(const std::filesystem::path& path);

// Two kafka clusters `a` and `b` and a mirror `m` from a to b: a valid base for small tests.
extern const char* const kBase;

}  // namespace mqdr::config::test
