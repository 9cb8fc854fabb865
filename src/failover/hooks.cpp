#include "failover/hooks.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

extern char** environ;

namespace mqdr::failover {

namespace {

constexpr std::size_t kOutputTail = 4096;
constexpr auto kKillGrace = std::chrono::seconds(2);

void keep_tail(std::string& out, const char* data, std::size_t n) {
  out.append(data, n);
  if (out.size() > 2 * kOutputTail) out.erase(0, out.size() - kOutputTail);
}

// Reads what is available on `fd` (non-blocking) into `out`; false at EOF or error.
bool drain(int fd, std::string& out) {
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      keep_tail(out, buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
}

}  // namespace

nlohmann::json HookResult::to_json() const {
  nlohmann::json j = {{"path", path},          {"ok", ok},
                      {"exit_code", exit_code}, {"timed_out", timed_out},
                      {"duration_ms", duration_ms}};
  if (signal != 0) j["signal"] = signal;
  if (!error.empty()) j["error"] = error;
  if (!output.empty()) j["output"] = output;
  return j;
}

HookResult run_hook(const std::string& path, const std::map<std::string, std::string>& env,
                    Duration timeout) {
  HookResult r;
  r.path = path;
  auto started = std::chrono::steady_clock::now();
  auto finish = [&] {
    r.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    if (r.output.size() > kOutputTail) r.output.erase(0, r.output.size() - kOutputTail);
    return r;
  };

  // The daemon's environment without the variables we set, then ours.
  std::vector<std::string> vars;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && env.count(std::string(kv.substr(0, eq)))) continue;
    vars.emplace_back(kv);
  }
  for (const auto& [k, v] : env) vars.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    r.error = fmt::format("cannot create a pipe: {}", std::strerror(errno));
    return finish();
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);  // its own process group, killed as a whole
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t dfl;
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGTERM);
  sigaddset(&dfl, SIGINT);
  sigaddset(&dfl, SIGHUP);
  sigaddset(&dfl, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv = {const_cast<char*>(path.c_str()), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    r.error = fmt::format("cannot run: {}", std::strerror(rc));
    return finish();
  }
  int flags = ::fcntl(pipefd[0], F_GETFL);
  ::fcntl(pipefd[0], F_SETFL, flags | O_NONBLOCK);

  auto deadline = started + timeout;
  // A plain flag rather than std::optional: GCC -O2 warns (falsely) about the optional.
  bool kill_pending = false;
  std::chrono::steady_clock::time_point kill_at{};
  bool pipe_open = true;
  int status = 0;
  while (true) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      r.error = fmt::format("waitpid: {}", std::strerror(errno));
      break;
    }
    auto now = std::chrono::steady_clock::now();
    if (!r.timed_out && now >= deadline) {
      r.timed_out = true;
      ::kill(-pid, SIGTERM);
      kill_pending = true;
      kill_at = now + std::min<std::chrono::steady_clock::duration>(
                          kKillGrace, std::max<std::chrono::steady_clock::duration>(
                                          timeout, std::chrono::milliseconds(100)));
    }
    if (kill_pending && now >= kill_at) {
      ::kill(-pid, SIGKILL);
      kill_pending = false;
    }
    if (pipe_open) {
      pollfd p{pipefd[0], POLLIN, 0};
      int n = ::poll(&p, 1, 20);
      if (n > 0) pipe_open = drain(pipefd[0], r.output);
    } else {
      ::usleep(20000);
    }
  }
  if (pipe_open) drain(pipefd[0], r.output);  // what the hook wrote last
  ::close(pipefd[0]);
  if (r.timed_out) {
    // Children of the hook that ignored SIGTERM go too.
    ::kill(-pid, SIGKILL);
  }
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  r.ok = !r.timed_out && r.error.empty() && WIFEXITED(status) && r.exit_code == 0;
  if (!r.ok && r.error.empty()) {
    if (r.timed_out) {
      r.error = fmt::format("timed out after {} ms; its process group was killed", timeout.count());
    } else if (r.signal != 0) {
      r.error = fmt::format("killed by signal {}", r.signal);
    } else {
      r.error = fmt::format("exited with status {}", r.exit_code);
    }
  }
  return finish();
}

}  // namespace mqdr::failover
