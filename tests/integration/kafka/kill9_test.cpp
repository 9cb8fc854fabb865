// kill -9 of a real `mqdr run` in the middle of a stream, several times, then a clean run to
// the end: every source record is on the target (at_least_once: duplicates allowed, no loss).

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>

#include "kafka_fixture.hpp"
#include "tests/harness/child.hpp"

namespace mqdr::kafka::test {
namespace {

namespace fs = std::filesystem;

class MqdrProcess {
 public:
  MqdrProcess(const fs::path& config, const fs::path& log) {
    std::string bin = MQDR_BINARY;
    std::vector<std::string> args = {bin, "run", "-c", config.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      mqdr::test::die_with_parent(parent);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
  }
  ~MqdrProcess() {
    if (pid_ > 0) kill9();
  }
  pid_t pid() const { return pid_; }
  void kill9() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  // SIGTERM and wait (bounded); returns the exit code, or -1 if it had to be killed.
  int terminate(std::chrono::seconds timeout) {
    ::kill(pid_, SIGTERM);
    const auto until = Clock::now() + timeout;
    int status = 0;
    while (Clock::now() < until) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(100ms);
    }
    kill9();
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

// Produces while killing `mqdr run` 4 times, then checks the target with a read_committed reader.
void kill9_scenario(const std::string& delivery, bool exactly_once) {
  const std::string run = unique(exactly_once ? "mkeos" : "mkill");
  const std::vector<std::string> topics = {run + ".a", run + ".b"};
  Admin a(cluster("kafka-a", bootstrap_a()));
  Admin b(cluster("kafka-b", bootstrap_b()));
  for (const auto& t : topics) a.create(t, 3);

  const fs::path dir = fs::temp_directory_path() / run;
  fs::create_directories(dir / "state");
  const fs::path config = dir / "mqdr.yaml";
  const fs::path log = dir / "mqdr.log";
  const int port = 20000 + static_cast<int>(std::random_device{}() % 20000);
  {
    std::ofstream f(config);
    f << "version: 1\n"
      << "daemon:\n  state_dir: " << (dir / "state").string() << "\n"
      << "  admin: { listen: 127.0.0.1:" << port << " }\n"
      << "  log: { level: info }\n"
      << "clusters:\n"
      << "  kafka-a: { kind: kafka, bootstrap_servers: '" << bootstrap_a() << "' }\n"
      << "  kafka-b: { kind: kafka, bootstrap_servers: '" << bootstrap_b() << "' }\n"
      << "mirrors:\n"
      << "  - name: " << run << "\n"
      << "    source: kafka-a\n    target: kafka-b\n"
      << "    topics: ['" << run << "\\..*']\n"
      << "    refresh_interval: 2s\n"
      << "    delivery: " << delivery << "\n";
  }

  // A producer writes 60 000 records in the background, while mqdr is killed and restarted.
  constexpr int kTotal = 60000;
  std::atomic<int> produced{0};
  std::jthread producer([&] {
    for (int start = 0; start < kTotal; start += 2000) {
      std::vector<Record> batch;
      for (int i = start; i < start + 2000; ++i) {
        batch.push_back(rec(topics[static_cast<std::size_t>(i) % 2], i % 3,
                            "k" + std::to_string(i % 101), "v" + std::to_string(i)));
      }
      produce(bootstrap_a(), batch);
      produced = start + 2000;
      std::this_thread::sleep_for(50ms);
    }
  });

  auto on_target = [&] { return b.total_end(topics[0]) + b.total_end(topics[1]); };
  for (int round = 0; round < 4; ++round) {
    const std::int64_t before = on_target();
    MqdrProcess p(config, log);
    ASSERT_GT(p.pid(), 0);
    // Kill it once it is visibly copying (or after a bounded wait).
    wait_until([&] { return on_target() >= before + 4000 + 1000 * round; }, 60s, 50ms);
    p.kill9();
  }
  producer.join();
  ASSERT_EQ(produced.load(), kTotal);

  MqdrProcess last(config, log);
  ASSERT_TRUE(wait_until([&] {
    std::set<std::string> seen;
    for (const auto& t : topics) {
      for (const auto& r : read_all(bootstrap_b(), t)) seen.insert(*r.value);
    }
    return seen.size() == static_cast<std::size_t>(kTotal);
  }, 180s, 2s)) << "see " << log;
  EXPECT_EQ(last.terminate(60s), 0) << "see " << log;

  std::set<std::string> seen;
  std::size_t copies = 0;
  for (const auto& t : topics) {
    for (const auto& r : read_all(bootstrap_b(), t)) {
      seen.insert(*r.value);
      ++copies;
    }
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kTotal));
  for (int i = 0; i < kTotal; i += 997) EXPECT_EQ(seen.count("v" + std::to_string(i)), 1u);
  std::cout << delivery << ": records: " << kTotal << ", copies on target: " << copies
            << " (duplicates from kill -9: " << copies - seen.size() << ")\n";
  if (exactly_once) {
    EXPECT_EQ(copies, static_cast<std::size_t>(kTotal));
  }
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

TEST(KafkaKill9, AtLeastOnceRepeatedKillNineLosesNothing) { kill9_scenario("at_least_once", false); }

TEST(KafkaKill9, ExactlyOnceRepeatedKillNineNeitherLosesNorDuplicates) {
  kill9_scenario("exactly_once", true);
}

}  // namespace
}  // namespace mqdr::kafka::test
