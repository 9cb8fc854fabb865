#pragma once
// Helpers of the operations tests (unit and integration): running tools and the real `mqdr`
// binary as processes, temp dirs, free ports, bounded waits.

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace mqdr::ops_test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::string random_suffix() {
  std::random_device rd;
  std::mt19937_64 gen(rd());
  static const char* digits = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(digits[gen() % 36]);
  return s;
}

// A fresh directory under the temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = fs::temp_directory_path() /
            ("mqdr-ops-" + tag + "-" + std::to_string(getpid()) + "-" + random_suffix());
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline bool is_executable(const fs::path& p) { return access(p.c_str(), X_OK) == 0; }

// The path of `tool` on PATH, or nullopt.
inline std::optional<fs::path> which(const std::string& tool) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    fs::path candidate = fs::path(dir) / tool;
    if (fs::is_regular_file(candidate) && is_executable(candidate)) return candidate;
  }
  return std::nullopt;
}

struct Result {
  int code = -1;       // exit code; 128+signal when killed; -1 when it did not finish in time
  std::string output;  // stdout and stderr interleaved
};

struct Proc {
  pid_t pid = -1;
  fs::path log;
};

// Starts argv[0] (looked up on PATH when it has no slash) with stdout+stderr to `log`. `env`
// entries ("NAME=value") are added to (or replace in) the inherited environment; with
// `clean_env` only PATH and `env` are passed.
inline Proc spawn(const std::vector<std::string>& argv, const fs::path& log,
                  const std::map<std::string, std::string>& env = {}, bool clean_env = false,
                  const std::optional<fs::path>& cwd = std::nullopt) {
  std::map<std::string, std::string> merged;
  if (!clean_env) {
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  } else if (const char* path = std::getenv("PATH")) {
    merged["PATH"] = path;
  }
  for (const auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);

  Proc p;
  p.log = log;
  p.pid = fork();
  if (p.pid == 0) {
    setpgid(0, 0);  // own process group: a timeout kills the whole command
    FILE* f = std::fopen(log.c_str(), "w");
    if (f != nullptr) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    if (cwd && chdir(cwd->c_str()) != 0) _exit(126);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    if (argv[0].find('/') != std::string::npos) {
      execve(argv[0].c_str(), args.data(), envp.data());
    } else {
      environ = envp.data();
      execvp(argv[0].c_str(), args.data());
    }
    _exit(127);
  }
  return p;
}

// Waits for exit at most `limit`; returns the exit code (128+signal when killed), or -1 when it
// is still running.
inline int wait_exit(pid_t pid, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (true) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() >= until) return -1;
    std::this_thread::sleep_for(20ms);
  }
}

// Stops a spawned process: SIGTERM, then SIGKILL after `grace`; returns its exit code.
inline int stop(Proc& p, std::chrono::milliseconds grace = 20s) {
  if (p.pid <= 0) return -1;
  kill(p.pid, SIGTERM);
  int code = wait_exit(p.pid, grace);
  if (code < 0) {
    kill(-p.pid, SIGKILL);
    kill(p.pid, SIGKILL);
    code = wait_exit(p.pid, 10s);
  }
  p.pid = -1;
  return code;
}

// Runs a command to completion (at most `limit`, then its process group is killed).
inline Result run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env = {}, bool clean_env = false,
                  std::chrono::milliseconds limit = 120s,
                  const std::optional<fs::path>& cwd = std::nullopt) {
  char name[] = "/tmp/mqdr-ops-run-XXXXXX";
  int fd = mkstemp(name);
  if (fd >= 0) close(fd);
  Proc p = spawn(argv, name, env, clean_env, cwd);
  Result r;
  r.code = wait_exit(p.pid, limit);
  if (r.code < 0) {
    kill(-p.pid, SIGKILL);
    wait_exit(p.pid, 10s);
  }
  r.output = slurp(name);
  std::remove(name);
  return r;
}

inline std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 30s,
                std::chrono::milliseconds step = 100ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(step);
  }
  return pred();
}

// A loopback TCP port nobody listens on right now.
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

inline std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  auto end = s.find_last_not_of(ws);
  s.erase(end == std::string::npos ? 0 : end + 1);
  return s;
}

}  // namespace mqdr::ops_test
