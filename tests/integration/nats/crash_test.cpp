// Crashes: kill -9 of a real `mqdr run` mid-stream (several times), and the target server killed
// and restarted mid-stream. Zero lost, zero duplicates, order kept.

#include "tests/harness/child.hpp"
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "nats/worker.hpp"
#include "nats_fixture.hpp"

namespace mqdr::nats::test {
namespace {

using namespace std::chrono_literals;

// Every source sequence 1..n exactly once, in order, on the target.
void expect_exact_copy(Side& a, Side& b, const std::string& stream, std::uint64_t n) {
  auto src = a.read_all(stream);
  auto dst = b.read_all(stream);
  ASSERT_EQ(src.size(), n);
  ASSERT_EQ(dst.size(), n) << "target holds " << dst.size() << " of " << n;
  for (std::size_t i = 0; i < n; ++i) {
    auto seq = last_header_value(dst[i].header_block, kSourceSeqHeader);
    ASSERT_TRUE(seq.has_value());
    ASSERT_EQ(*seq, std::to_string(src[i].seq)) << "target position " << i;
    expect_same(src[i], dst[i], false);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a.open(cluster("nats-a", nats_a()));
    b.open(cluster("nats-b", nats_b()));
    dir = std::filesystem::temp_directory_path() / unique("mqdr-nats-crash");
    std::filesystem::create_directories(dir / "state");
  }
  void TearDown() override {
    for (const auto& s : cleanup) {
      a.delete_stream(s);
      b.delete_stream(s);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  Side a, b;
  std::filesystem::path dir;
  std::vector<std::string> cleanup;
};

// A free loopback port for the admin API.
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

pid_t spawn_mqdr(const std::filesystem::path& config, const std::filesystem::path& log) {
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    mqdr::test::die_with_parent(parent);
    FILE* f = std::fopen(log.c_str(), "a");
    if (f != nullptr) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    execl(MQDR_BINARY, MQDR_BINARY, "run", "-c", config.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

TEST_F(CrashTest, KillMinusNineOfMqdrRunLosesNothingAndDuplicatesNothing) {
  const std::string stream = unique("KILL9");
  cleanup = {stream};
  const std::string subject = "k." + stream;
  a.add_stream(stream, {subject + ".*"});
  constexpr int kTotal = 100000;
  a.publish({subject + ".a", subject + ".b"}, kTotal / 2);

  const auto config = dir / "mqdr.yaml";
  {
    std::ofstream out(config);
    out << "version: 1\n"
        << "daemon:\n"
        << "  state_dir: " << (dir / "state").string() << "\n"
        << "  admin: { listen: 127.0.0.1:" << free_port() << " }\n"
        << "clusters:\n"
        << "  nats-a: { kind: nats, servers: [" << nats_a() << "] }\n"
        << "  nats-b: { kind: nats, servers: [" << nats_b() << "] }\n"
        << "mirrors:\n"
        << "  - name: kill9\n"
        << "    source: nats-a\n"
        << "    target: nats-b\n"
        << "    streams: [" << stream << "]\n"
        << "    mode: relay\n";
  }
  const auto log = dir / "mqdr.log";

  // The second half is published while mqdr is being killed and restarted.
  std::atomic<bool> published{false};
  std::jthread publisher([&] {
    Side p;
    p.open(cluster("nats-a", nats_a()));
    for (int i = 0; i < 10; ++i) {
      p.publish({subject + ".a", subject + ".b"}, kTotal / 20, kTotal / 2 + i * (kTotal / 20));
      std::this_thread::sleep_for(50ms);  // spread the publishes over the kills (pacing only)
    }
    published = true;
  });

  std::uint64_t seen = 0;
  for (int round = 0; round < 4; ++round) {
    pid_t pid = spawn_mqdr(config, log);
    ASSERT_GT(pid, 0);
    // Let it copy at least a few thousand more messages, then kill it mid-stream.
    const std::uint64_t goal = std::min<std::uint64_t>(seen + 7000, kTotal - 1);
    bool progressed = wait_until([&] { return b.count(stream) >= goal; }, 60s);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_TRUE(progressed) << "round " << round << ": target has " << b.count(stream) << "\n" << text;
    seen = b.count(stream);
  }
  publisher.join();
  ASSERT_TRUE(published);
  pid_t pid = spawn_mqdr(config, log);
  bool done = wait_until([&] { return b.count(stream) >= kTotal; }, 120s);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(done) << "target has " << b.count(stream);
  // Nothing more arrives late (a duplicate would show up as an extra message).
  std::this_thread::sleep_for(500ms);  // observation window, not synchronization
  expect_exact_copy(a, b, stream, kTotal);
}

TEST_F(CrashTest, TargetServerRestartedMidStreamCatchesUpWithNothingLost) {
  const std::string harness = std::string(MQDR_SOURCE_DIR) + "/tests/harness/harness.sh";
  const std::string stream = unique("TRESTART");
  cleanup = {stream};
  const std::string subject = "r." + stream;
  a.add_stream(stream, {subject});
  constexpr int kTotal = 60000;
  a.publish({subject}, kTotal / 2);
  {
    struct Running {
      MirrorContext ctx;
      MirrorWorker worker;
      std::jthread thread;
      explicit Running(MirrorContext c) : ctx(std::move(c)), worker(ctx) {
        thread = std::jthread([this](std::stop_token st) { (void)worker.run(st); });
      }
    } w(mirror_context("restart", a.cfg, b.cfg, {stream}, dir / "state"));
    ASSERT_TRUE(wait_until([&] { return b.count(stream) >= 5000; }, 60s));
    // Whatever happens below, nats-b is started again before the test ends.
    struct Restart {
      std::string cmd;
      ~Restart() { (void)std::system(cmd.c_str()); }
    } restart{harness + " up nats-b >/dev/null 2>&1"};
    ASSERT_EQ(std::system((harness + " kill9 nats-b >/dev/null 2>&1").c_str()), 0);
    // Publishing goes on at the source while the target is down.
    a.publish({subject}, kTotal / 2, kTotal / 2);
    const int up = std::system((harness + " up nats-b >/dev/null 2>&1").c_str());
    ASSERT_EQ(up, 0) << "nats-b did not come back";
    // Our test connection reconnects by itself.
    ASSERT_TRUE(wait_until([&] { return b.count(stream) >= kTotal; }, 120s)) << b.count(stream);
    w.thread.request_stop();
  }
  expect_exact_copy(a, b, stream, kTotal);
}

}  // namespace
}  // namespace mqdr::nats::test
