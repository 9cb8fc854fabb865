// Helpers shared by bench/kafka and bench/nats: child processes, /proc figures, percentiles,
// load average. Header-only; bench/common has no CMakeLists.txt, so the bench glob skips it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

inline double secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Peak resident set (VmHWM) or current (VmRSS) of a process, KiB; -1 when unreadable.
inline long proc_status_kb(pid_t pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(k, 0) == 0) return std::stol(line.substr(k.size()));
  }
  return -1;
}

// User + system CPU seconds of a process (all its threads); -1 when unreadable.
inline double proc_cpu_s(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto rp = all.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream rest(all.substr(rp + 2));
  std::string f;
  std::vector<std::string> fields;
  while (rest >> f) fields.push_back(f);
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  if (fields.size() < 13) return -1;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

inline std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

inline std::string utc_now() {
  char buf[64];
  std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// Starts argv[0] with arguments, stdout and stderr to `log`; dies with the benchmark.
inline pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// SIGTERM, then SIGKILL after `grace`. Returns the exit status (waitpid form).
inline int stop(pid_t pid, std::chrono::seconds grace = std::chrono::seconds(30)) {
  if (pid <= 0) return -1;
  kill(pid, SIGTERM);
  const auto until = Clock::now() + grace;
  int status = 0;
  while (Clock::now() < until) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return status;
}

inline bool alive(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, WNOHANG) == 0;
}

// Output of a shell command (first line, trailing newline removed).
inline std::string shell_line(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return {};
  char buf[8192];
  std::string out;
  if (fgets(buf, sizeof buf, p) != nullptr) out = buf;
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// The pid of a harness unit (`kafka-a/node1`, `nats-a`, ...) from its pid file; -1 if unknown.
// Compared before and after a measurement: other engineers' tests may restart shared brokers.
inline pid_t harness_pid(const std::string& unit_dir) {
  std::ifstream in(env_or("MQDR_HARNESS_DIR", "/tmp/mqdr-harness") + "/" + unit_dir + "/pid");
  pid_t p = -1;
  in >> p;
  return p;
}

struct Percentiles {
  double p50_ms = -1, p99_ms = -1, max_ms = -1;
  std::size_t count = 0;
};

inline Percentiles percentiles(std::vector<std::int64_t> lat) {
  Percentiles p;
  p.count = lat.size();
  if (lat.empty()) return p;
  std::sort(lat.begin(), lat.end());
  p.p50_ms = static_cast<double>(lat[lat.size() / 2]) / 1e6;
  p.p99_ms = static_cast<double>(lat[std::min(lat.size() - 1, lat.size() * 99 / 100)]) / 1e6;
  p.max_ms = static_cast<double>(lat.back()) / 1e6;
  return p;
}

// A free TCP port on loopback (bound and released; good enough for an admin listener).
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace bench
