#include <httplib.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "mqdr/config_loader.hpp"
#include "mqdr/daemon.hpp"
#include "mqdr/daemon_parts.hpp"

namespace mqdr {
namespace {

using namespace std::chrono_literals;

std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("mqdr-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
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

std::string config_text(const std::filesystem::path& state, const std::string& m2_topics,
                        bool with_m3) {
  std::string text = "version: 1\n"
                     "daemon:\n"
                     "  state_dir: " + state.string() + "\n"
                     "  admin: { listen: 127.0.0.1:" + std::to_string(free_port()) + " }\n"
                     "clusters:\n"
                     "  a: { kind: kafka, bootstrap_servers: 127.0.0.1:1 }\n"
                     "  b: { kind: kafka, bootstrap_servers: 127.0.0.1:2 }\n"
                     "mirrors:\n"
                     "  - { name: m1, source: a, target: b, topics: [one] }\n"
                     "  - { name: m2, source: a, target: b, topics: [" + m2_topics + "] }\n";
  if (with_m3) text += "  - { name: m3, source: b, target: a, topics: [three] }\n";
  return text;
}

// A test worker kind: counts how often each mirror's worker was made, runs until stopped.
struct CountingKind {
  std::mutex mu;
  std::map<std::string, int> starts;
  BrokerRegistry registry() {
    BrokerRegistry r;
    BrokerKind k;
    k.make_mirror = [this](const MirrorContext& ctx) -> WorkerPtr {
      {
        std::lock_guard lock(mu);
        ++starts[ctx.mirror.name];
      }
      struct W : Worker {
        WorkerStatsPtr stats;
        Status run(std::stop_token stop) override {
          stats->add_records(10, 100);
          std::mutex m;
          std::condition_variable_any cv;
          std::unique_lock lock(m);
          cv.wait(lock, stop, [] { return false; });
          return Status::ok();
        }
      };
      auto w = std::make_unique<W>();
      w->stats = ctx.stats;
      return w;
    };
    r.add(ClusterKind::kafka, k);
    return r;
  }
  int count(const std::string& name) {
    std::lock_guard lock(mu);
    return starts[name];
  }
};

template <typename Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

TEST(Daemon, ReloadRestartsOnlyChangedMirrors) {
  auto dir = temp_dir("reload");
  CountingKind kind;
  auto registry = kind.registry();
  auto cfg = std::make_shared<const Config>(
      config::load_string(config_text(dir, "two", false), "test.yaml"));
  Daemon d(cfg, registry);
  d.start();
  ASSERT_TRUE(eventually([&] { return kind.count("m1") == 1 && kind.count("m2") == 1; }));

  auto next = std::make_shared<const Config>(
      config::load_string(config_text(dir, "two, deux", true), "test.yaml"));
  d.reload(next);
  ASSERT_TRUE(eventually([&] { return kind.count("m3") == 1 && kind.count("m2") == 2; }));
  EXPECT_EQ(kind.count("m1"), 1);

  // Status and metrics show every mirror.
  auto status = d.status();
  ASSERT_EQ(status["mirrors"].size(), 3u);
  EXPECT_EQ(status["mirrors"][0]["name"], "m1");
  EXPECT_EQ(status["mirrors"][0]["state"], "running");
  auto text = render_prometheus(d.metrics());
  EXPECT_NE(text.find("mqdr_mirror_records_total{mirror=\"m1\"} 10"), std::string::npos);
  EXPECT_NE(text.find("mqdr_build_info"), std::string::npos);

  // Removing a mirror stops it.
  d.reload(std::make_shared<const Config>(
      config::load_string(config_text(dir, "two, deux", false), "test.yaml")));
  EXPECT_EQ(d.status()["mirrors"].size(), 2u);
  d.stop();
  std::filesystem::remove_all(dir);
}

TEST(Daemon, AMirrorOfAKindNotBuiltInFailsVisibly) {
  auto dir = temp_dir("nokind");
  BrokerRegistry empty;
  auto cfg = std::make_shared<const Config>(
      config::load_string(config_text(dir, "two", false), "test.yaml"));
  Daemon d(cfg, empty);
  d.start();
  ASSERT_TRUE(eventually([&] {
    auto s = d.status();
    return !s["mirrors"][0]["last_error"].is_null();
  }));
  EXPECT_NE(d.status()["mirrors"][0]["last_error"].get<std::string>().find("not available"),
            std::string::npos);
  d.stop();
  std::filesystem::remove_all(dir);
}

TEST(StateLock, ASecondHolderIsRefusedWithThePid) {
  auto dir = temp_dir("lock");
  {
    StateLock first(dir);
    try {
      StateLock second(dir);
      FAIL() << "second lock succeeded";
    } catch (const std::runtime_error& e) {
      std::string what = e.what();
      EXPECT_NE(what.find("already running"), std::string::npos);
      EXPECT_NE(what.find(std::to_string(::getpid())), std::string::npos);
    }
  }
  StateLock again(dir);  // released with the first
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mqdr
