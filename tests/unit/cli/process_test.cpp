// The real `mqdr` binary as a process: exit codes, sd_notify, signals, the state-dir lock.
#include <httplib.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Proc {
  pid_t pid = -1;
  fs::path err;
};

// Starts the binary with args; stdout+stderr go to `log`. `env` entries are added.
Proc spawn(const std::vector<std::string>& args, const fs::path& log,
           const std::vector<std::string>& env = {}) {
  Proc p;
  p.err = log;
  p.pid = fork();
  if (p.pid == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    std::string bin = MQDR_BINARY;
    argv.push_back(bin.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return p;
}

// Waits for exit at most `limit`; returns the exit code, or -1 when still running.
int wait_exit(pid_t pid, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(20ms);
  }
  return -1;
}

int run_sync(const std::vector<std::string>& args, const fs::path& log) {
  auto p = spawn(args, log);
  int code = wait_exit(p.pid, 30s);
  if (code < 0) kill(p.pid, SIGKILL);
  return code;
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 15s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("mqdr-proc-" + std::to_string(getpid()) + "-" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    port = free_port();
    write_config("one");
  }
  void TearDown() override { fs::remove_all(dir); }
  void write_config(const std::string& topic, bool broken = false) {
    std::ofstream out(dir / "mqdr.yaml");
    out << "version: 1\n"
        << "daemon:\n"
        << "  state_dir: " << (dir / "state").string() << "\n"
        << "  admin: { listen: 127.0.0.1:" << port << " }\n"
        << "  shutdown_timeout: 10s\n"
        << "clusters:\n"
        << "  a: { kind: kafka, bootstrap_servers: 127.0.0.1:1 }\n"
        << "  b: { kind: kafka, bootstrap_servers: 127.0.0.1:2 }\n"
        << "mirrors:\n"
        << "  - { name: m1, source: a, target: b, topics: [" << topic << "] }\n";
    if (broken) out << "  - { name: m2, source: a, target: nowhere, topics: [x] }\n";
  }
  fs::path config() const { return dir / "mqdr.yaml"; }
  fs::path dir;
  int port = 0;
};

TEST_F(ProcessTest, VersionHelpAndUsageErrors) {
  EXPECT_EQ(run_sync({"version"}, dir / "v.log"), 0);
  EXPECT_NE(slurp(dir / "v.log").find("mqdr "), std::string::npos);
  EXPECT_EQ(run_sync({"--help"}, dir / "h.log"), 0);
  EXPECT_NE(slurp(dir / "h.log").find("validate"), std::string::npos);
  for (const char* cmd : {"run", "validate", "status"}) {
    EXPECT_EQ(run_sync({cmd, "--help"}, dir / "ch.log"), 0) << cmd;
    EXPECT_NE(slurp(dir / "ch.log").find("--config"), std::string::npos) << cmd;
  }
  EXPECT_EQ(run_sync({"frobnicate"}, dir / "u.log"), 2);
  EXPECT_EQ(run_sync({"validate"}, dir / "u2.log"), 2);  // -c missing
  EXPECT_EQ(run_sync({}, dir / "u3.log"), 2);
}

TEST_F(ProcessTest, ValidateExitCodes) {
  EXPECT_EQ(run_sync({"validate", "-c", config().string()}, dir / "ok.log"), 0);
  write_config("one", true);
  EXPECT_EQ(run_sync({"validate", "-c", config().string()}, dir / "bad.log"), 2);
  EXPECT_NE(slurp(dir / "bad.log").find("mirrors[1].target"), std::string::npos);
  EXPECT_EQ(run_sync({"validate", "-c", (dir / "missing.yaml").string()}, dir / "m.log"), 2);
  EXPECT_EQ(run_sync({"run", "-c", (dir / "missing.yaml").string()}, dir / "m2.log"), 2);
}

// The shipped examples validate. The SPEC example names /etc/mqdr files and ${ENV} variables of
// the machine it is written for: here (a build machine) they are warnings naming what this host
// lacks, and errors with --strict.
TEST_F(ProcessTest, ShippedConfigsValidate) {
  const fs::path source = MQDR_SOURCE_DIR;
  EXPECT_EQ(run_sync({"validate", "-c", (source / "config/demo.yaml").string()}, dir / "d.log"), 0)
      << slurp(dir / "d.log");
  const auto example = (source / "config/mqdr.example.yaml").string();
  EXPECT_EQ(run_sync({"validate", "-c", example}, dir / "e.log"), 0) << slurp(dir / "e.log");
  EXPECT_NE(slurp(dir / "e.log").find("ok (6 clusters"), std::string::npos) << slurp(dir / "e.log");
  if (!fs::exists("/etc/mqdr") && getenv("KAFKA_EAST_PASSWORD") == nullptr) {
    const auto warned = slurp(dir / "e.log");
    EXPECT_NE(warned.find("warning: environment variable 'KAFKA_EAST_PASSWORD' is not set (on this "
                          "host"),
              std::string::npos)
        << warned;
    EXPECT_EQ(run_sync({"validate", "--strict", "-c", example}, dir / "f.log"), 2);
    const auto out = slurp(dir / "f.log");
    EXPECT_NE(out.find("environment variable 'KAFKA_EAST_PASSWORD' is not set"), std::string::npos)
        << out;
    EXPECT_NE(out.find("/etc/mqdr/admin.token"), std::string::npos) << out;
    EXPECT_NE(out.find("7 problems on this host"), std::string::npos) << out;
  }
}

// daemon.log.format json: one JSON object per line, with mirror, cluster and group lifted out of
// the message into fields of their own.
TEST_F(ProcessTest, JsonLogsCarryMirrorClusterAndGroupFields) {
  {
    std::ofstream out(dir / "json.yaml");
    out << "version: 1\n"
        << "daemon:\n"
        << "  state_dir: " << (dir / "state").string() << "\n"
        << "  admin: { listen: 127.0.0.1:" << port << " }\n"
        << "  log: { level: info, format: json }\n"
        << "  shutdown_timeout: 10s\n"
        << "clusters:\n"
        << "  a: { kind: kafka, bootstrap_servers: 127.0.0.1:1 }\n"
        << "  b: { kind: kafka, bootstrap_servers: 127.0.0.1:2 }\n"
        << "mirrors:\n"
        << "  - { name: m1, source: a, target: b, topics: [one] }\n"
        << "failover:\n"
        << "  - name: g1\n"
        << "    pairs: [{ primary: a, standby: b }]\n"
        << "    mode: manual\n"
        << "    health: { interval: 500ms, timeout: 500ms, failures: 3, recoveries: 2 }\n"
        << "    clients: { file: " << (dir / "clients.json").string() << " }\n";
  }
  auto p = spawn({"run", "-c", (dir / "json.yaml").string()}, dir / "json.log");
  std::set<std::string> fields;
  ASSERT_TRUE(eventually(
      [&] {
        std::ifstream in(dir / "json.log");
        std::string line;
        while (std::getline(in, line)) {
          auto j = nlohmann::json::parse(line, nullptr, false);
          if (!j.is_object()) continue;
          for (const char* f : {"mirror", "cluster", "group"}) {
            if (j.contains(f) && j.contains("msg") && j.contains("time") && j.contains("level")) {
              fields.insert(std::string(f) + "=" + j[f].get<std::string>());
            }
          }
        }
        return fields.count("mirror=m1") && fields.count("cluster=a") && fields.count("group=g1");
      },
      20s))
      << slurp(dir / "json.log");
  kill(p.pid, SIGTERM);
  EXPECT_EQ(wait_exit(p.pid, 30s), 0);
  // Every line is JSON.
  std::ifstream in(dir / "json.log");
  std::string line;
  while (std::getline(in, line)) {
    EXPECT_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded()) << line;
  }
}

TEST_F(ProcessTest, NotifiesSystemdReloadsOnSighupStopsOnSigterm) {
  // A NOTIFY_SOCKET as systemd provides it.
  const fs::path sock_path = dir / "notify.sock";
  int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock_path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{0, 200000};
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string received;
  auto drain_notify = [&] {
    char buf[512];
    ssize_t n;
    while ((n = recv(sock, buf, sizeof buf, 0)) > 0) received.append(buf, n).push_back('|');
  };

  auto p = spawn({"run", "-c", config().string()}, dir / "run.log",
                 {"NOTIFY_SOCKET=" + sock_path.string(), "WATCHDOG_USEC=400000"});
  ASSERT_TRUE(eventually([&] {
    drain_notify();
    return received.find("READY=1") != std::string::npos;
  })) << slurp(dir / "run.log");
  httplib::Client client("127.0.0.1", port);
  auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  ASSERT_TRUE(eventually([&] {
    drain_notify();
    return received.find("WATCHDOG=1") != std::string::npos;
  }));

  // A second instance on the same state_dir refuses.
  EXPECT_EQ(run_sync({"run", "-c", config().string()}, dir / "second.log"), 1);
  EXPECT_NE(slurp(dir / "second.log").find("already running"), std::string::npos);

  // An invalid config on SIGHUP is refused; the daemon keeps running.
  write_config("one", true);
  kill(p.pid, SIGHUP);
  ASSERT_TRUE(eventually([&] { return slurp(dir / "run.log").find("reload refused") != std::string::npos; }));
  EXPECT_NE(slurp(dir / "run.log").find("mirrors[1].target"), std::string::npos);
  EXPECT_EQ(client.Get("/healthz")->status, 200);

  // A valid change on SIGHUP restarts the changed mirror.
  write_config("two");
  kill(p.pid, SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return slurp(dir / "run.log").find("1 mirrors restarted or added") != std::string::npos;
  })) << slurp(dir / "run.log");

  kill(p.pid, SIGTERM);
  EXPECT_EQ(wait_exit(p.pid, 20s), 0) << slurp(dir / "run.log");
  drain_notify();
  EXPECT_NE(received.find("STOPPING=1"), std::string::npos);
  close(sock);

  // The lock was released: a new instance may start.
  auto again = spawn({"run", "-c", config().string()}, dir / "again.log");
  ASSERT_TRUE(eventually([&] {
    auto r = client.Get("/readyz");
    return r && r->status == 200;
  })) << slurp(dir / "again.log");
  kill(again.pid, SIGINT);
  EXPECT_EQ(wait_exit(again.pid, 20s), 0);
}

TEST_F(ProcessTest, StatusTalksToTheDaemon) {
  EXPECT_EQ(run_sync({"status", "-c", config().string()}, dir / "down.log"), 1);
  EXPECT_NE(slurp(dir / "down.log").find("cannot reach"), std::string::npos);
  auto p = spawn({"run", "-c", config().string()}, dir / "run.log");
  httplib::Client client("127.0.0.1", port);
  ASSERT_TRUE(eventually([&] {
    auto r = client.Get("/readyz");
    return r && r->status == 200;
  }));
  EXPECT_EQ(run_sync({"status", "-c", config().string()}, dir / "table.log"), 0);
  EXPECT_NE(slurp(dir / "table.log").find("MIRROR"), std::string::npos);
  EXPECT_NE(slurp(dir / "table.log").find("m1"), std::string::npos);
  EXPECT_EQ(run_sync({"status", "-c", config().string(), "--json"}, dir / "json.log"), 0);
  auto j = nlohmann::json::parse(slurp(dir / "json.log"));
  EXPECT_EQ(j["mirrors"][0]["name"], "m1");
  EXPECT_TRUE(j["clusters"].is_array());
  kill(p.pid, SIGTERM);
  EXPECT_EQ(wait_exit(p.pid, 20s), 0);
}

}  // namespace
