// config/mqdr.service: `systemd-analyze verify` and `security` accept it, it has the hardening
// and lifecycle settings the operations contract asks for, and its own command lines work with
// the built binary the way systemd runs them (notify socket, watchdog, reload, stop, exit 2).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <regex>

#include "tests/unit/ops/ops_util.hpp"

namespace mqdr::ops_test {
namespace {

const fs::path kSource = MQDR_SOURCE_DIR;
const fs::path kUnit = kSource / "config" / "mqdr.service";

// section -> key -> values (a key may repeat: ExecReload, SystemCallFilter).
using UnitFile = std::map<std::string, std::map<std::string, std::vector<std::string>>>;

UnitFile parse_unit(const std::string& text) {
  UnitFile unit;
  std::stringstream in(text);
  std::string line;
  std::string section;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    unit[section][trim(line.substr(0, eq))].push_back(trim(line.substr(eq + 1)));
  }
  return unit;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string w;
  while (ss >> w) out.push_back(w);
  return out;
}

// The unit with the binary path replaced by the built binary, in a temp dir.
fs::path unit_copy(const TempDir& dir, const std::string& extra_replace_from = "",
                   const std::string& extra_replace_to = "") {
  std::string text = replace_all(slurp(kUnit), "/usr/bin/mqdr", MQDR_BINARY);
  if (!extra_replace_from.empty()) text = replace_all(text, extra_replace_from, extra_replace_to);
  fs::path p = dir / "mqdr.service";
  spit(p, text);
  return p;
}

// Runs `systemd-analyze verify` and returns the lines that are about our unit (warnings make
// verify print without failing, so both the exit code and the lines matter).
std::pair<int, std::vector<std::string>> verify(const fs::path& unit) {
  auto r = run({"systemd-analyze", "verify", "--man=no", unit.string()});
  std::vector<std::string> ours;
  std::stringstream ss(r.output);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.find("mqdr") != std::string::npos) ours.push_back(line);
  }
  return {r.code, ours};
}

class SystemdUnit : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kUnit)) << kUnit;
    ASSERT_TRUE(which("systemd-analyze"))
        << "systemd-analyze is not installed: run scripts/setup.sh (Debian package systemd)";
    unit = parse_unit(slurp(kUnit));
  }
  const std::vector<std::string>& values(const std::string& section, const std::string& key) {
    static const std::vector<std::string> none;
    auto s = unit.find(section);
    if (s == unit.end()) return none;
    auto k = s->second.find(key);
    return k == s->second.end() ? none : k->second;
  }
  std::string value(const std::string& key) {
    const auto& v = values("Service", key);
    return v.empty() ? std::string("<unset>") : v.back();
  }
  UnitFile unit;
};

TEST_F(SystemdUnit, SystemdAnalyzeVerifyPasses) {
  TempDir dir("unit");
  auto [code, lines] = verify(unit_copy(dir));
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(lines.empty()) << "systemd-analyze verify complains:\n" << join(lines);
}

TEST_F(SystemdUnit, VerifyCheckCatchesBrokenUnits) {
  // The check above would notice a misspelt key and a missing binary.
  TempDir dir("unit-bad");
  auto [code, lines] = verify(unit_copy(dir, "ProtectHome=yes", "ProtectHomes=yes"));
  EXPECT_FALSE(lines.empty());
  fs::path missing = unit_copy(dir, MQDR_BINARY, (dir.path() / "no-such-mqdr").string());
  auto [code2, lines2] = verify(missing);
  EXPECT_NE(code2, 0);
  EXPECT_FALSE(lines2.empty());
}

TEST_F(SystemdUnit, ExposureScoreIsLow) {
  // systemd's own rating of the sandbox: 0 (locked down) .. 10 (unprotected); <= 2.0 is "OK".
  TempDir dir("unit-sec");
  auto r = run({"systemd-analyze", "security", "--offline=yes", "--threshold=20",
                unit_copy(dir).string()});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("Overall exposure level for mqdr.service"), std::string::npos)
      << r.output;
}

TEST_F(SystemdUnit, LifecycleSettings) {
  EXPECT_EQ(value("Type"), "notify");
  EXPECT_EQ(value("NotifyAccess"), "main");
  EXPECT_EQ(value("Restart"), "on-failure");
  EXPECT_EQ(value("RestartPreventExitStatus"), "2");  // config errors are not retried
  EXPECT_NE(value("WatchdogSec"), "<unset>");
  const auto& reload = values("Service", "ExecReload");
  ASSERT_FALSE(reload.empty());
  EXPECT_EQ(reload.back(), "/bin/kill -HUP $MAINPID");
  EXPECT_EQ(split_words(value("ExecStart")),
            (std::vector<std::string>{"/usr/bin/mqdr", "run", "-c", "/etc/mqdr/mqdr.yaml"}));
  EXPECT_EQ(value("StateDirectory"), "mqdr");  // /var/lib/mqdr, the default daemon.state_dir
  EXPECT_EQ(value("User"), "mqdr");
  EXPECT_EQ(values("Install", "WantedBy"), std::vector<std::string>{"multi-user.target"});
  EXPECT_EQ(values("Unit", "After"), std::vector<std::string>{"network-online.target"});
}

TEST_F(SystemdUnit, Hardening) {
  EXPECT_EQ(value("NoNewPrivileges"), "yes");
  EXPECT_EQ(value("ProtectSystem"), "strict");
  EXPECT_EQ(value("ProtectHome"), "yes");
  EXPECT_EQ(value("PrivateTmp"), "yes");
  EXPECT_EQ(value("PrivateDevices"), "yes");
  EXPECT_EQ(value("CapabilityBoundingSet"), "");
  EXPECT_EQ(value("AmbientCapabilities"), "");
  EXPECT_EQ(value("RestrictAddressFamilies"), "AF_UNIX AF_INET AF_INET6");
  const auto& filters = values("Service", "SystemCallFilter");
  ASSERT_FALSE(filters.empty());
  EXPECT_EQ(filters.front(), "@system-service");
  EXPECT_EQ(value("SystemCallArchitectures"), "native");
  EXPECT_EQ(value("LockPersonality"), "yes");
  EXPECT_EQ(value("RestrictSUIDSGID"), "yes");
}

// The unit's own command lines, run against the built binary the way systemd would: the
// ExecStart line with NOTIFY_SOCKET and WATCHDOG_USEC from WatchdogSec, the ExecReload lines
// with $MAINPID, a stop by SIGTERM within TimeoutStopSec, and exit code 2 (RestartPreventExitStatus)
// on a broken config.
TEST_F(SystemdUnit, CommandLinesWorkAsSystemdRunsThem) {
  TempDir dir("unit-run");
  const int port = free_port();
  const fs::path config = dir / "mqdr.yaml";
  auto write_config = [&](const std::string& topics) {
    spit(config, "version: 1\n"
                 "daemon:\n"
                 "  state_dir: " + (dir / "state").string() + "\n"
                 "  admin: { listen: 127.0.0.1:" + std::to_string(port) + " }\n"
                 "  shutdown_timeout: 10s\n"
                 "clusters:\n"
                 "  a: { kind: kafka, bootstrap_servers: 127.0.0.1:1 }\n"
                 "  b: { kind: kafka, bootstrap_servers: 127.0.0.1:2 }\n"
                 "mirrors:\n"
                 "  - { name: m1, source: a, target: b, topics: [" + topics + "] }\n");
  };
  write_config("one");
  // The unit's lines with the installed paths replaced by the built binary and the temp config.
  auto adapt = [&](const std::string& line, pid_t mainpid) {
    std::vector<std::string> argv;
    for (auto w : split_words(line)) {
      if (w == "/usr/bin/mqdr") w = MQDR_BINARY;
      if (w == "/etc/mqdr/mqdr.yaml") w = config.string();
      if (w == "$MAINPID") w = std::to_string(mainpid);
      argv.push_back(w);
    }
    return argv;
  };

  // WatchdogSec=30s -> WATCHDOG_USEC=30000000.
  const std::string watchdog = value("WatchdogSec");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(watchdog, m, std::regex(R"((\d+)(s|min)?)"))) << watchdog;
  const long long watchdog_usec =
      std::stoll(m[1]) * (m[2] == "min" ? 60 : 1) * 1000000LL;

  const fs::path sock_path = dir / "notify";
  int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock_path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{0, 100000};
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<std::string> messages;
  auto received = [&](const std::string& what) {
    char buf[512];
    ssize_t n;
    while ((n = recv(sock, buf, sizeof buf, 0)) > 0) messages.emplace_back(buf, n);
    std::size_t count = 0;
    for (const auto& msg : messages) count += msg.find(what) != std::string::npos ? 1 : 0;
    return count;
  };

  Proc daemon = spawn(adapt(value("ExecStart"), 0), dir / "run.log",
                      {{"NOTIFY_SOCKET", sock_path.string()},
                       {"WATCHDOG_USEC", std::to_string(watchdog_usec)}});
  ASSERT_TRUE(eventually([&] { return received("READY=1") == 1; }))
      << slurp(dir / "run.log");

  // systemctl reload: every ExecReload line in order, each must succeed.
  write_config("two");
  for (const auto& line : values("Service", "ExecReload")) {
    auto r = run(adapt(line, daemon.pid));
    EXPECT_EQ(r.code, 0) << line << "\n" << r.output;
  }
  EXPECT_TRUE(eventually([&] { return received("READY=1") == 2; }))
      << "no READY=1 after the reload\n" << slurp(dir / "run.log");
  EXPECT_GE(received("RELOADING=1"), 1U);

  // A broken config makes the first ExecReload line fail, so `systemctl reload` reports it.
  spit(config, slurp(config) + "  - { name: m2, source: a, target: nowhere, topics: [x] }\n");
  auto bad = run(adapt(values("Service", "ExecReload").front(), daemon.pid));
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("mirrors[1].target"), std::string::npos) << bad.output;

  // systemctl stop: SIGTERM, exit 0 well within TimeoutStopSec.
  const std::string stop_timeout = value("TimeoutStopSec");
  ASSERT_TRUE(std::regex_match(stop_timeout, m, std::regex(R"((\d+)s)"))) << stop_timeout;
  kill(daemon.pid, SIGTERM);
  EXPECT_EQ(wait_exit(daemon.pid, std::chrono::seconds(std::stoi(m[1]))), 0)
      << slurp(dir / "run.log");
  EXPECT_GE(received("STOPPING=1"), 1U);
  close(sock);

  // With the broken config the service does not start, with the exit code systemd does not
  // restart on (RestartPreventExitStatus).
  auto start = run(adapt(value("ExecStart"), 0), {}, false, 30s);
  EXPECT_EQ(std::to_string(start.code), value("RestartPreventExitStatus")) << start.output;
}

}  // namespace
}  // namespace mqdr::ops_test
