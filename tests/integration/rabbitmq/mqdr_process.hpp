#pragma once
// A child process for the RabbitMQ tests that kill mqdr (SIGKILL) or stop it (SIGTERM): by
// default `mqdr run -c FILE`; any other command line with with_args(). Output goes to a log file.

#include "tests/harness/child.hpp"
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace mqdr::test::rabbit {

class MqdrProcess {
 public:
  MqdrProcess(std::filesystem::path config, std::filesystem::path log)
      : config_(std::move(config)), log_(std::move(log)) {}
  ~MqdrProcess() { kill9(); }

  // Runs `program args...` instead of `mqdr run -c CONFIG`.
  void with_args(std::vector<std::string> argv) { argv_ = std::move(argv); }

  void start() {
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      mqdr::test::die_with_parent(parent);
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      if (!argv_.empty()) {
        std::vector<char*> args;
        for (auto& a : argv_) args.push_back(a.data());
        args.push_back(nullptr);
        execv(args[0], args.data());
      } else {
        execl(MQDR_BINARY, "mqdr", "run", "-c", config_.c_str(), static_cast<char*>(nullptr));
      }
      _exit(127);
    }
  }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
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

  // SIGTERM, then waits up to `limit` for a clean exit; returns the exit code (-1 = killed).
  int terminate(std::chrono::milliseconds limit) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill9();
    return -1;
  }

  std::string log_text() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::filesystem::path config_;
  std::filesystem::path log_;
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
};

}  // namespace mqdr::test::rabbit
