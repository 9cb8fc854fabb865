#pragma once
// Helpers for the backup integration tests: a scratch directory with a config naming the harness
// clusters, running `mqdr backup|restore|verify` as child processes (exit code and output), one
// that can be killed with SIGKILL, and file surgery on backups (flip a byte, truncate, delete).
// Every wait is bounded.

#include "tests/harness/child.hpp"
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/endpoints.hpp"

namespace mqdr::backup::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline std::string unique_name(const std::string& prefix) {
  static std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08llx", static_cast<unsigned long long>(rng() & 0xffffffffULL));
  return prefix + "-" + buf;
}

struct RunResult {
  int rc = -1;
  std::string out;  // stdout and stderr
};

// A child process running MQDR_BINARY with `args`; output to `log`.
class Child {
 public:
  Child(std::vector<std::string> args, fs::path log) : args_(std::move(args)), log_(std::move(log)) {
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      mqdr::test::die_with_parent(parent);
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> argv;
      static std::string prog = "mqdr";
      argv.push_back(prog.data());
      for (auto& a : args_) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(MQDR_BINARY, argv.data());
      _exit(127);
    }
  }
  ~Child() { kill9(); }
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      rc_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      pid_ = -1;
      return false;
    }
    return true;
  }
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  // SIGTERM, then wait(limit).
  int terminate(std::chrono::milliseconds limit) {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
    return wait(limit);
  }
  // Waits for the exit (at most `limit`, then SIGKILL); returns the exit code.
  int wait(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (running()) {
      if (std::chrono::steady_clock::now() >= until) {
        kill9();
        return -1;
      }
      std::this_thread::sleep_for(20ms);
    }
    return rc_;
  }
  std::string output() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::vector<std::string> args_;
  fs::path log_;
  pid_t pid_ = -1;
  int rc_ = -1;
};

// A scratch directory holding config.yaml; removed at the end.
class Scratch {
 public:
  explicit Scratch(const std::string& prefix) {
    dir_ = fs::temp_directory_path() / unique_name("mqdr-" + prefix);
    fs::create_directories(dir_);
  }
  ~Scratch() {
    std::error_code ec;
    if (std::getenv("MQDR_KEEP_TEST_DIRS") == nullptr) fs::remove_all(dir_, ec);
  }
  const fs::path& dir() const { return dir_; }
  fs::path backups() const { return dir_ / "backups"; }
  fs::path config() const { return dir_ / "config.yaml"; }

  // Writes config.yaml: daemon section (state in the scratch dir), `clusters` and `backups` YAML.
  void write_config(const std::string& clusters, const std::string& backups) const {
    std::ofstream out(config());
    out << "version: 1\n"
        << "daemon:\n  state_dir: " << (dir_ / "state").string() << "\n"
        << "  admin: { listen: 127.0.0.1:19781 }\n"
        << "clusters:\n" << clusters << "backups:\n" << backups;
  }

  RunResult mqdr(std::vector<std::string> args, std::chrono::milliseconds limit = 300s) const {
    static int n = 0;
    Child c(std::move(args), dir_ / ("run-" + std::to_string(++n) + ".log"));
    RunResult r;
    r.rc = c.wait(limit);
    r.out = c.output();
    return r;
  }

  // Complete backups of a plan (directory names without a leading '.'), sorted.
  std::vector<std::string> backup_names(const std::string& plan) const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& de : fs::directory_iterator(backups() / plan, ec)) {
      const std::string n = de.path().filename().string();
      if (de.is_directory() && n[0] != '.') out.push_back(n);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path dir_;
};

// The segment files of a backup, sorted.
inline std::vector<fs::path> segment_files(const fs::path& backup) {
  std::vector<fs::path> out;
  for (const auto& de : fs::recursive_directory_iterator(backup)) {
    if (de.is_regular_file() && de.path().string().find(".seg") != std::string::npos) out.push_back(de.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline void flip_byte(const fs::path& file, std::uintmax_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

inline void copy_tree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

inline bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit,
                     std::chrono::milliseconds step = 20ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(step);
  }
  return pred();
}

}  // namespace mqdr::backup::test
