// Hooks: real shell scripts in a temp dir.

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "failover/hooks.hpp"
#include "tests/unit/failover/test_dir.hpp"

namespace mqdr::failover {
namespace {

using namespace std::chrono_literals;

std::string script(const test::TempDir& dir, const std::string& name, const std::string& body) {
  auto p = dir / name;
  std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
  ::chmod(p.c_str(), 0755);
  return p.string();
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A zombie (killed, not yet reaped by init) counts as gone.
bool process_alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

TEST(FailoverHooks, PassesTheEnvironment) {
  test::TempDir dir;
  auto out = dir / "env.txt";
  auto hook = script(dir, "announce.sh",
                     "echo \"$MQDR_GROUP $MQDR_EPOCH $MQDR_STATE $MQDR_ACTIVE $MQDR_CLIENTS_FILE\" > " +
                         out.string() + "\necho done");
  auto r = run_hook(hook,
                    {{"MQDR_GROUP", "east-west"},
                     {"MQDR_EPOCH", "7"},
                     {"MQDR_STATE", "failed_over"},
                     {"MQDR_ACTIVE", "standby"},
                     {"MQDR_CLIENTS_FILE", "/run/x.json"}},
                    5s);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(read(out), "east-west 7 failed_over standby /run/x.json\n");
  EXPECT_EQ(r.output, "done\n");
}

TEST(FailoverHooks, FailureIsReportedWithItsOutput) {
  test::TempDir dir;
  auto r = run_hook(script(dir, "fail.sh", "echo 'no route to primary' >&2\nexit 3"), {}, 5s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.error.find("status 3"), std::string::npos) << r.error;
  EXPECT_NE(r.output.find("no route to primary"), std::string::npos);
  EXPECT_EQ(r.to_json()["exit_code"], 3);
}

TEST(FailoverHooks, MissingOrNotExecutable) {
  test::TempDir dir;
  auto r = run_hook((dir / "absent.sh").string(), {}, 5s);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("cannot run"), std::string::npos) << r.error;
  auto p = dir / "plain.sh";
  std::ofstream(p) << "#!/bin/sh\nexit 0\n";
  r = run_hook(p.string(), {}, 5s);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("cannot run"), std::string::npos) << r.error;
}

TEST(FailoverHooks, TimeoutKillsTheWholeProcessGroup) {
  test::TempDir dir;
  auto pidfile = dir / "child.pid";
  // The hook starts a child that ignores SIGTERM, then hangs itself.
  auto hook = script(dir, "hang.sh",
                     "sh -c 'trap \"\" TERM; while :; do sleep 1; done' &\necho $! > " +
                         pidfile.string() + "\nwhile :; do sleep 1; done");
  auto r = run_hook(hook, {}, 300ms);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.timed_out);
  EXPECT_NE(r.error.find("timed out"), std::string::npos) << r.error;
  auto text = read(pidfile);
  ASSERT_FALSE(text.empty());
  pid_t child = std::stoi(text);
  // Bounded wait for the child to be reaped by init after the SIGKILL of the group.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !process_alive(child);
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(gone) << "child " << child << " survived";
}

TEST(FailoverHooks, ExitBeforeTimeoutIsNotKilled) {
  test::TempDir dir;
  auto r = run_hook(script(dir, "quick.sh", "sleep 0.1; exit 0"), {}, 10s);
  EXPECT_TRUE(r.ok);
  EXPECT_FALSE(r.timed_out);
}

}  // namespace
}  // namespace mqdr::failover
