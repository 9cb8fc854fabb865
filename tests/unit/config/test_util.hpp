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

// A config file of the corpus (bad/ or good/) with what its header comments announce; see
// bad/README.md.
struct Case {
  struct Expectation {
    bool warning = false;
    int line = 0;
    std::string path;
    std::string substring;
  };
  struct File {
    std::string name;
    mode_t mode = 0600;
    std::string content;
  };
  std::filesystem::path file;
  std::vector<Expectation> expected;
  Env env;
  std::vector<std::string> secrets;
  std::vector<File> files;
};

Case read_case(const std::filesystem::path& file);
// Creates the case's files in `dir`.
void create_files(const Case& c, const TempDir& dir);
// The *.yaml files of a corpus directory, sorted.
std::vector<std::filesystem::path> corpus_files(const std::filesystem::path& dir);
// Loads the case with its environment, `dir` as base directory for relative paths.
Config load_case(const Case& c, const TempDir& dir, std::vector<Problem>* warnings = nullptr);

}  // namespace mqdr::config::test
