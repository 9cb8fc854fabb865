// Failover through the real `mqdr run` and the CLI, one group driving a Kafka, a NATS and a
// RabbitMQ pair of the harness at once:
//  - DrillOnLiveBrokers: `mqdr drill` fails the group over and back with the primaries up, the
//    report says passed and carries RTO/RPO; the operator errors (unknown group, wrong token).
//  - KillNineOfAllThreePrimaries: the three primary brokers are killed with kill -9; the daemon
//    fails over by itself, the clients file names the standbys, consumers on the standbys find
//    everything replicated before the kill; mqdr itself is killed -9 while failed over and
//    resumes in that state; the primaries come back, reverse replication carries what was written
//    on the standbys, `mqdr failback` switches back, nothing is lost.

#include "tests/harness/child.hpp"
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

#include "tests/harness/endpoints.hpp"
#include "tests/integration/kafka/kafka_fixture.hpp"
#include "tests/integration/nats/nats_fixture.hpp"
#include "tests/integration/rabbitmq/mqdr_process.hpp"
#include "tests/integration/rabbitmq/rabbit_fixture.hpp"

namespace mqdr {
namespace {

using namespace std::chrono_literals;
namespace kt = mqdr::kafka::test;
namespace nt = mqdr::nats::test;
namespace rt = mqdr::test::rabbit;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `mqdr ARGS...` to completion (at most `limit`), output into `log`; the exit code, or -1.
int run_cli(const std::vector<std::string>& args, const std::filesystem::path& log,
            std::chrono::seconds limit = 300s) {
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    mqdr::test::die_with_parent(parent);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<std::string> argv{"mqdr"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> p;
    for (auto& a : argv) p.push_back(a.data());
    p.push_back(nullptr);
    execv(MQDR_BINARY, p.data());
    _exit(127);
  }
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::this_thread::sleep_for(50ms);
  }
  ::kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

// Brings every primary of the harness back up whatever happens to the test.
struct RestartPrimaries {
  ~RestartPrimaries() {
    if (armed) mqdr::test::harness("up" + which);
  }
  bool armed = false;
  std::string which = " kafka-a nats-a rabbit-a";
};

// One group over the three broker pairs, with unique item names per test.
struct World {
  std::filesystem::path dir;
  int port = 0;
  std::string topic = kt::unique("fo-all");
  std::string stream = "FOALL_" + rt::suffix();
  std::string subject = "foall." + rt::suffix();
  std::string exchange = "fo.all." + rt::suffix();
  std::string queue = "fo.all.q." + rt::suffix();
  const mqdr::test::Endpoints& ep = mqdr::test::Endpoints::get();
  // Which pairs the group drives: "kafka", "nats", "rabbitmq" or "all".
  bool k = true, n = true, r = true;
  std::string fence_hook;  // an executable for fence_hooks (none when empty)
  std::string switch_hook;  // an executable for clients.hooks (none when empty)

  explicit World(const std::string& kinds = "all")
      : k(kinds == "all" || kinds == "kafka"),
        n(kinds == "all" || kinds == "nats"),
        r(kinds == "all" || kinds == "rabbitmq") {
    char tmpl[] = "/tmp/mqdr-fo-daemon-XXXXXX";
    dir = ::mkdtemp(tmpl);
    std::random_device rd;
    port = 20000 + static_cast<int>(rd() % 20000);
  }
  ~World() {
    std::error_code ec;
    // Kept (with mqdr.log) when the test failed or is failing with an exception.
    if (!::testing::Test::HasFailure() && std::uncaught_exceptions() == 0 &&
        std::getenv("MQDR_KEEP_TEST_DIRS") == nullptr) {
      std::filesystem::remove_all(dir, ec);
    } else {
      std::printf("kept %s\n", dir.c_str());
    }
  }

  std::filesystem::path config(const std::string& token = "fo-token-1") const {
    const auto file = dir / (token + ".yaml");
    {
      std::ofstream t(dir / (token + ".token"));
      t << token << "\n";
    }
    std::filesystem::permissions(dir / (token + ".token"), std::filesystem::perms::owner_read |
                                                               std::filesystem::perms::owner_write);
    auto rabbit_uri = [](const ClusterConfig& c) {
      return fmt::format("amqp://{}:{}@{}:{}/", c.rabbitmq.user, c.rabbitmq.password.reveal(),
                         c.rabbitmq.host, c.rabbitmq.port);
    };
    const auto ra = rt::node_a();
    const auto rb = rt::node_b();
    std::string mirrors, pairs;
    if (k) {
      mirrors += fmt::format("  - {{ name: fo-kafka, source: kafka-a, target: kafka-b, topics: "
                             "['{}'], rename: '{{topic}}', refresh_interval: 2s }}\n",
                             topic);
      pairs += "      - { primary: kafka-a, standby: kafka-b }\n";
    }
    if (n) {
      mirrors += fmt::format("  - {{ name: fo-nats, source: nats-a, target: nats-b, streams: [{}], "
                             "mode: relay }}\n",
                             stream);
      pairs += "      - { primary: nats-a, standby: nats-b }\n";
    }
    if (r) {
      mirrors += fmt::format("  - {{ name: fo-rabbit, source: rabbit-a, target: rabbit-b, "
                             "exchanges: ['{}'], sync_definitions: true, refresh_interval: 2s }}\n",
                             exchange);
      pairs += "      - { primary: rabbit-a, standby: rabbit-b }\n";
    }
    std::ofstream out(file);
    out << fmt::format(R"(version: 1
daemon:
  state_dir: {dir}/state
  admin: {{ listen: 127.0.0.1:{port}, token_file: {dir}/{token}.token }}
  log: {{ level: info, format: text }}
  shutdown_timeout: 10s
clusters:
  kafka-a: {{ kind: kafka, bootstrap_servers: '{ka}' }}
  kafka-b: {{ kind: kafka, bootstrap_servers: '{kb}' }}
  nats-a: {{ kind: nats, servers: ['{na}'] }}
  nats-b: {{ kind: nats, servers: ['{nb}'] }}
  rabbit-a: {{ kind: rabbitmq, uri: '{ua}', management_uri: '{ma}' }}
  rabbit-b: {{ kind: rabbitmq, uri: '{ub}', management_uri: '{mb}' }}
mirrors:
{mirrors}failover:
  - name: all
    pairs:
{pairs}    mode: automatic
    health: {{ interval: 1s, timeout: 2s, failures: 3, recoveries: 2 }}
    max_lag: 1h
    hold_down: 1h
    drain_timeout: 20s
{fence}    clients: {{ file: {dir}/clients.json, format: json{hooks} }}
)",
                       fmt::arg("dir", dir.string()), fmt::arg("port", port),
                       fmt::arg("token", token), fmt::arg("ka", ep.kafka_a),
                       fmt::arg("kb", ep.kafka_b), fmt::arg("na", nt::nats_a()),
                       fmt::arg("nb", nt::nats_b()), fmt::arg("ua", rabbit_uri(ra)),
                       fmt::arg("ma", ra.rabbitmq.management_uri), fmt::arg("ub", rabbit_uri(rb)),
                       fmt::arg("mb", rb.rabbitmq.management_uri), fmt::arg("topic", topic),
                       fmt::arg("mirrors", mirrors), fmt::arg("pairs", pairs),
                       fmt::arg("hooks", switch_hook.empty() ? std::string()
                                                             : ", hooks: ['" + switch_hook + "']"),
                       fmt::arg("fence", fence_hook.empty()
                                             ? std::string()
                                             : "    fence_hooks: ['" + fence_hook + "']\n"));
    return file;
  }

  nlohmann::json status() const {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(2, 0);
    auto r = c.Get("/v1/status");
    if (!r || r->status != 200) return nullptr;
    return nlohmann::json::parse(r->body, nullptr, false);
  }
  nlohmann::json group() const {
    auto s = status();
    if (!s.is_object()) return nlohmann::json::object();
    for (const auto& g : s.value("failover", nlohmann::json::array())) {
      if (g.value("group", "") == "all") return g;
    }
    return nlohmann::json::object();
  }
  bool mirror_running(const std::string& name) const {
    auto s = status();
    if (!s.is_object()) return false;
    for (const auto& m : s.value("mirrors", nlohmann::json::array())) {
      if (m.value("name", "") == name) return m.value("state", "") == "running";
    }
    return false;
  }
  // The group is probed and the three forward mirrors run (the RabbitMQ capture queue is bound:
  // what is published before that is not captured, as with federation).
  bool wait_running() const {
    return kt::wait_until(
        [&] {
          return group().contains("group") && (!k || mirror_running("fo-kafka")) &&
                 (!n || mirror_running("fo-nats")) && (!r || mirror_running("fo-rabbit"));
        },
        120s);
  }
  nlohmann::json clients() const {
    auto j = nlohmann::json::parse(slurp(dir / "clients.json"), nullptr, false);
    return j.is_object() ? j : nlohmann::json::object();
  }

  // Topic, stream, exchange and queue on the primaries.
  void seed() {
    if (k) kt::Admin(kt::cluster("kafka-a", ep.kafka_a)).create(topic, 2);
    if (n) {
      nt::Side a;
      a.open(nt::cluster("nats-a", nt::nats_a()));
      a.add_stream(stream, {subject + ".>"});
    }
    if (r) {
      rt::Client c(rt::node_a());
      c.exchange(exchange, "topic");
      c.queue(queue);
      c.bind(queue, exchange, "#");
    }
  }

  // The primaries of the pairs driven, for the harness ("kafka-a nats-a").
  std::string primaries() const {
    std::string out;
    if (k) out += " kafka-a";
    if (n) out += " nats-a";
    if (r) out += " rabbit-a";
    return out;
  }
  // Replicated: the standby holds at least `count` of each kind driven.
  bool standby_holds(int count) const {
    if (k && kt::Admin(kt::cluster("kafka-b", ep.kafka_b)).total_end(topic) < count) return false;
    if (n) {
      nt::Side b;
      b.open(nt::cluster("nats-b", nt::nats_b()));
      if (b.count(stream) < static_cast<std::uint64_t>(count)) return false;
    }
    if (r && rt::Client(rt::node_b()).depth(queue) < count) return false;
    return true;
  }

  // `n` messages on each of the three brokers reachable at the given side ('a' or 'b'), named
  // prefix0..prefix(n-1).
  void write(char side, const std::string& prefix, int count, int nats_offset) {
    if (k) {
      const std::string& bootstrap = side == 'a' ? ep.kafka_a : ep.kafka_b;
      std::vector<Record> recs;
      for (int i = 0; i < count; ++i) {
        recs.push_back(kt::rec(topic, i % 2, prefix + std::to_string(i), std::string("v") + std::to_string(i)));
      }
      kt::produce(bootstrap, recs);
    }
    if (n) {
      nt::Side s;
      s.open(nt::cluster("nats", side == 'a' ? nt::nats_a() : nt::nats_b()));
      s.publish({subject + ".x"}, count, nats_offset);
    }
    if (r) {
      rt::Client c(side == 'a' ? rt::node_a() : rt::node_b());
      amqp_basic_properties_t props{};
      props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
      props.delivery_mode = 2;
      for (int i = 0; i < count; ++i) c.publish(exchange, "k", props, prefix + std::to_string(i));
      // Publisher confirms are not used by the test client: a round trip makes sure the broker
      // took every publish before the caller goes on.
      (void)c.depth(queue);
    }
  }

  // Everything named prefix0..prefix(n-1) is readable on side `side`: Kafka keys, NATS payload
  // indexes (nats_offset .. nats_offset+n-1), RabbitMQ bodies (consumed from the queue).
  void expect_readable(char side, const std::string& prefix, int count, int nats_offset,
                       std::chrono::milliseconds limit) {
    if (k) {
      const std::string& bootstrap = side == 'a' ? ep.kafka_a : ep.kafka_b;
      std::set<std::string> keys;
      EXPECT_TRUE(kt::wait_until(
          [&] {
            keys.clear();
            for (const auto& rec : kt::read_all(bootstrap, topic)) {
              if (rec.key) keys.insert(*rec.key);
            }
            for (int i = 0; i < count; ++i) {
              if (!keys.count(prefix + std::to_string(i))) return false;
            }
            return true;
          },
          limit, 1s))
          << "kafka on " << side << " lacks some of " << prefix << "*";
    }
    if (n) {
      nt::Side s;
      s.open(nt::cluster("nats", side == 'a' ? nt::nats_a() : nt::nats_b()));
      std::set<std::string> payloads;
      EXPECT_TRUE(nt::wait_until(
          [&] {
            payloads.clear();
            for (const auto& m : s.read_all(stream)) {
              payloads.insert(m.payload.substr(0, m.payload.find('-', 8)));
            }
            for (int i = 0; i < count; ++i) {
              if (!payloads.count("payload-" + std::to_string(nats_offset + i))) return false;
            }
            return true;
          },
          limit))
          << "nats on " << side << " lacks some of payload-" << nats_offset << "..";
    }
    if (r) {
      // Consumed (acked) like an application on that side would.
      rt::Client c(side == 'a' ? rt::node_a() : rt::node_b());
      std::set<std::string> seen;
      const auto until = std::chrono::steady_clock::now() + limit;
      auto missing = [&] {
        int m = 0;
        for (int i = 0; i < count; ++i) m += seen.count(prefix + std::to_string(i)) ? 0 : 1;
        return m;
      };
      while (missing() > 0 && std::chrono::steady_clock::now() < until) {
        for (const auto& msg : c.take(queue, static_cast<std::size_t>(missing()), 5s)) {
          seen.insert(msg.body);
        }
      }
      EXPECT_EQ(missing(), 0) << "rabbitmq on " << side << " lacks some of " << prefix << "*";
    }
  }
};

TEST(FailoverDaemon, DrillOnLiveBrokers) {
  World w;
  MQDR_REQUIRE_BROKER(w.ep.kafka_a);
  MQDR_REQUIRE_BROKER(w.ep.kafka_b);
  w.seed();
  const auto config = w.config();
  rt::MqdrProcess mqdr(config, w.dir / "mqdr.log");
  mqdr.start();
  ASSERT_TRUE(w.wait_running()) << w.status().dump(2) << slurp(w.dir / "mqdr.log");

  w.write('a', "d", 200, 0);
  // Replicated before the drill.
  ASSERT_TRUE(kt::wait_until([&] { return w.standby_holds(200); }, 120s)) << w.status().dump(2);
  rt::Client rb(rt::node_b());

  // Operator errors first: unknown group (2), a token the daemon does not know (1, says 401).
  EXPECT_EQ(run_cli({"failover", "-c", config.string(), "--group", "nope"}, w.dir / "e1.log"), 2);
  EXPECT_NE(slurp(w.dir / "e1.log").find("no failover group named 'nope'"), std::string::npos)
      << slurp(w.dir / "e1.log");
  const auto wrong = w.config("fo-wrong-token");
  EXPECT_EQ(run_cli({"failover", "-c", wrong.string(), "--group", "all"}, w.dir / "e2.log"), 1);
  EXPECT_NE(slurp(w.dir / "e2.log").find("401"), std::string::npos) << slurp(w.dir / "e2.log");
  EXPECT_EQ(w.group().value("state", ""), "replicating");

  // Two drills in a row on the same daemon: the second one starts from what the first left
  // (relays restarted after the failback, drill consumers and channels already there).
  auto drill = [&](const std::string& name, int epoch_after) {
    SCOPED_TRACE(name);
    const auto report = w.dir / (name + ".json");
    const int rc = run_cli({"drill", "-c", config.string(), "--group", "all", "--report",
                            report.string(), "--timeout", "120"},
                           w.dir / (name + ".log"), 600s);
    ASSERT_EQ(rc, 0) << slurp(w.dir / (name + ".log")) << "\n" << slurp(w.dir / "mqdr.log");
    auto r = nlohmann::json::parse(slurp(report), nullptr, false);
    ASSERT_TRUE(r.is_object()) << slurp(report);
    EXPECT_EQ(r["verdict"], "passed");
    EXPECT_GT(r["rto_ms"].get<long long>(), 0);
    EXPECT_EQ(r["failover"]["outcome"], "completed");
    EXPECT_EQ(r["failback"]["outcome"], "completed");
    EXPECT_TRUE(r["reverse_caught_up"].get<bool>());
    // Markers: 100 per mirror on each primary (50 consumed there) before the failover, 100 per
    // mirror on each standby while failed over; none lost, and the drill's consumer resumed on
    // the other side with every marker it had not consumed.
    const auto& mk = r["markers"];
    EXPECT_EQ(mk.value("failover_written", 0), 300) << mk.dump(1);
    EXPECT_EQ(mk.value("failback_written", 0), 300) << mk.dump(1);
    EXPECT_EQ(mk.value("failover_lost", -1), 0) << mk.dump(1);
    EXPECT_EQ(mk.value("failback_lost", -1), 0) << mk.dump(1);
    EXPECT_EQ(r["rpo"].value("markers_lost", -1), 0);
    for (const auto& phase : {"failover", "failback"}) {
      for (const std::string m : {"fo-kafka", "fo-nats", "fo-rabbit"}) {
        const std::string leg_name = std::string(phase) == "failover" ? m : m + ".reverse";
        const auto& leg = mk[phase][leg_name];
        EXPECT_EQ(leg.value("written", 0), 100) << leg_name << leg.dump(1);
        EXPECT_EQ(leg.value("consumed", 0), 50) << leg_name << leg.dump(1);
        EXPECT_EQ(leg.value("lost", nlohmann::json()).size(), 0u) << leg_name << leg.dump(1);
        const auto& resume = leg.value("consumer_resume", nlohmann::json::object());
        EXPECT_EQ(resume.value("checked", false), true) << leg_name << leg.dump(1);
        EXPECT_EQ(resume.value("resumed", 0), 50) << leg_name << leg.dump(1);
        EXPECT_EQ(resume.value("missing", nlohmann::json()).size(), 0u) << leg_name << leg.dump(1);
      }
    }
    std::printf("%s: %s\n", name.c_str(), slurp(w.dir / (name + ".log")).c_str());
    auto g = w.group();
    EXPECT_EQ(g["state"], "replicating");
    EXPECT_EQ(g["epoch"], epoch_after);
  };
  drill("drill", 2);
  if (HasFatalFailure()) return;
  drill("drill2", 4);
  if (HasFatalFailure()) return;

  EXPECT_EQ(w.clients()["active"], "primary");
  EXPECT_TRUE(kt::wait_until([&] { return w.mirror_running("fo-kafka"); }, 60s));
  EXPECT_FALSE(w.mirror_running("fo-kafka.reverse"));
  // The failed-over drill's capture queues: the reverse one on the standby was released after
  // the failback, the forward one is in use again on the primary.
  rt::Client ra(rt::node_a());
  EXPECT_FALSE(rb.counts("mqdr.capture.fo-rabbit.reverse." + w.exchange).has_value());
  EXPECT_TRUE(ra.counts("mqdr.capture.fo-rabbit." + w.exchange).has_value());
  EXPECT_EQ(mqdr.terminate(30s), 0);
}

// Markers lost at the switch make the drill fail with exit 3: a clients hook (run after the
// promotion, when the markers have reached the standby) empties the standby's drill queue, as a
// standby losing data would. The group still ends replicating; the report names what was lost.
TEST(FailoverDaemon, DrillExitsThreeWhenMarkersAreLost) {
  World w("rabbitmq");
  w.seed();
  const auto rb = rt::node_b();
  w.switch_hook = (w.dir / "purge.py").string();
  {
    std::ofstream h(w.switch_hook);
    h << fmt::format(R"(#!/usr/bin/env python3
import base64, urllib.request
auth = base64.b64encode(b"{}:{}").decode()
req = urllib.request.Request("{}/api/queues/%2F/mqdr.drill/contents", method="DELETE",
                             headers={{"Authorization": "Basic " + auth}})
urllib.request.urlopen(req, timeout=10)
open("{}", "a").write("purged\n")
)",
                     rb.rabbitmq.user, rb.rabbitmq.password.reveal(), rb.rabbitmq.management_uri,
                     (w.dir / "purged").string());
  }
  std::filesystem::permissions(w.switch_hook, std::filesystem::perms::owner_all);
  const auto config = w.config();
  rt::MqdrProcess mqdr(config, w.dir / "mqdr.log");
  mqdr.start();
  ASSERT_TRUE(w.wait_running()) << w.status().dump(2) << slurp(w.dir / "mqdr.log");
  const auto report = w.dir / "drill.json";
  const int rc = run_cli({"drill", "-c", config.string(), "--group", "all", "--report",
                          report.string()},
                         w.dir / "drill.log", 600s);
  EXPECT_EQ(rc, 3) << slurp(w.dir / "drill.log") << "\n" << slurp(w.dir / "mqdr.log");
  EXPECT_NE(slurp(w.dir / "purged").find("purged"), std::string::npos) << slurp(w.dir / "mqdr.log");
  EXPECT_NE(slurp(w.dir / "drill.log").find("markers lost"), std::string::npos) << slurp(w.dir / "drill.log");
  auto r = nlohmann::json::parse(slurp(report), nullptr, false);
  ASSERT_TRUE(r.is_object()) << slurp(report);
  EXPECT_EQ(r["verdict"], "markers lost");
  // The 50 markers not consumed on the primary were on the standby and are gone.
  EXPECT_EQ(r["markers"]["failover_lost"], 50) << r["markers"].dump(1);
  EXPECT_EQ(r["rpo"]["markers_lost"], 50);
  EXPECT_EQ(r["markers"]["failover"]["fo-rabbit"]["consumer_resume"]["resumed"], 0);
  // The failback still ran: markers written on the standby reached the primary.
  EXPECT_EQ(r["markers"]["failback_lost"], 0) << r["markers"].dump(1);
  EXPECT_EQ(w.group().value("state", ""), "replicating");
  EXPECT_EQ(mqdr.terminate(30s), 0);
}

// A primary that pauses (SIGSTOP) for less than the trip budget (failures x interval) causes no
// failover: the group may go suspect, and comes back to replicating with the same epoch.
TEST(FailoverDaemon, ShortPauseOfThePrimariesCausesNoFailover) {
  World w;
  MQDR_REQUIRE_BROKER(w.ep.kafka_a);
  w.seed();
  rt::MqdrProcess mqdr(w.config(), w.dir / "mqdr.log");
  mqdr.start();
  ASSERT_TRUE(w.wait_running()) << w.status().dump(2) << slurp(w.dir / "mqdr.log");
  ASSERT_TRUE(kt::wait_until(
      [&] {
        auto g = w.group();
        if (!g.contains("group")) return false;
        for (const auto& c : g["clusters"]) {
          if (c.value("up", nlohmann::json()) != true) return false;
        }
        return true;
      },
      60s));

  const std::filesystem::path h = w.ep.harness_dir;
  std::vector<pid_t> pids;
  for (const auto& f : {h / "kafka-a/node1/pid", h / "nats-a/pid", h / "rabbit-a/pid"}) {
    std::ifstream in(f);
    long pid = 0;
    ASSERT_TRUE(in >> pid) << "no pid in " << f;
    pids.push_back(static_cast<pid_t>(pid));
  }
  // Budget: 3 failed probes in a row, each failing after its 2 s timeout. A 3 s pause makes the
  // probe running into it fail (the group goes suspect), at most one more, never three.
  std::set<std::string> states;
  for (pid_t p : pids) ASSERT_EQ(::kill(p, SIGSTOP), 0);
  const auto resume_at = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < resume_at) {
    auto g = w.group();
    if (g.contains("group")) states.insert(g.value("state", ""));
    std::this_thread::sleep_for(100ms);
  }
  for (pid_t p : pids) ::kill(p, SIGCONT);

  // Some seconds for what the pause caused to play out, then: still on the primaries.
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    auto g = w.group();
    if (g.contains("group")) states.insert(g.value("state", ""));
    std::this_thread::sleep_for(100ms);
  }
  auto g = w.group();
  EXPECT_EQ(g["state"], "replicating") << g.dump(2);
  EXPECT_EQ(g["epoch"], 0) << g.dump(2);
  EXPECT_EQ(states.count("suspect"), 1U) << "the pause was not noticed: the test proves nothing";
  EXPECT_EQ(states.count("failing_over"), 0U);
  EXPECT_EQ(states.count("failed_over"), 0U);
  EXPECT_FALSE(std::filesystem::exists(w.dir / "clients.json"));
  EXPECT_EQ(mqdr.terminate(30s), 0);
}

// mqdr is killed -9 in the middle of a failover and of a failback (while a slow fence hook
// runs) and resumes the switch at the persisted step when it starts again.
TEST(FailoverDaemon, KillNineOfMqdrDuringFailoverAndFailbackResumesTheSwitch) {
  World w("nats");
  MQDR_REQUIRE_BROKER(w.ep.kafka_a);
  // The fence hook notes each run and takes 3 s: time enough to kill mqdr during it.
  const auto runs = w.dir / "fence.runs";
  w.fence_hook = (w.dir / "fence.sh").string();
  {
    std::ofstream h(w.fence_hook);
    h << "#!/bin/sh\necho \"$MQDR_STATE $MQDR_EPOCH\" >> " << runs.string() << "\nsleep 3\n";
  }
  std::filesystem::permissions(w.fence_hook, std::filesystem::perms::owner_all);
  w.seed();
  const auto config = w.config();
  rt::MqdrProcess mqdr(config, w.dir / "mqdr.log");
  mqdr.start();
  ASSERT_TRUE(w.wait_running()) << w.status().dump(2) << slurp(w.dir / "mqdr.log");
  w.write('a', "a", 100, 0);
  ASSERT_TRUE(kt::wait_until([&] { return w.standby_holds(100); }, 60s));
  ASSERT_TRUE(kt::wait_until(
      [&] {
        auto g = w.group();
        if (!g.contains("clusters") || g["clusters"].size() < 2) return false;
        return g["clusters"][0].value("up", nlohmann::json()) == true &&
               g["clusters"][1].value("up", nlohmann::json()) == true;
      },
      30s));

  auto crash_during = [&](const std::string& what, const std::string& state) {
    ASSERT_EQ(run_cli({what, "-c", config.string(), "--group", "all", "--no-wait"},
                      w.dir / (what + ".log")),
              0)
        << slurp(w.dir / (what + ".log"));
    ASSERT_TRUE(kt::wait_until(
        [&] {
          auto g = w.group();
          return g.value("state", "") == state && g.value("step", "") == "fence";
        },
        30s, 50ms))
        << w.group().dump(2);
    mqdr.kill9();
    mqdr.start();
  };

  crash_during("failover", "failing_over");
  ASSERT_TRUE(kt::wait_until([&] { return w.group().value("state", "") == "failed_over"; }, 60s))
      << w.group().dump(2) << slurp(w.dir / "mqdr.log");
  EXPECT_EQ(w.group()["epoch"], 1);
  EXPECT_EQ(w.clients()["active"], "standby");
  EXPECT_FALSE(w.mirror_running("fo-nats"));
  ASSERT_TRUE(kt::wait_until([&] { return w.group().value("reverse_replication", false); }, 60s))
      << w.group().dump(2);

  crash_during("failback", "failing_back");
  ASSERT_TRUE(kt::wait_until([&] { return w.group().value("state", "") == "replicating"; }, 60s))
      << w.group().dump(2) << slurp(w.dir / "mqdr.log");
  EXPECT_EQ(w.group()["epoch"], 2);
  EXPECT_EQ(w.clients()["active"], "primary");
  EXPECT_TRUE(kt::wait_until([&] { return w.mirror_running("fo-nats"); }, 30s));
  // The fence step ran again after each crash: twice per switch, with the switch's epoch.
  EXPECT_EQ(slurp(runs), "failing_over 1\nfailing_over 1\nfailing_back 2\nfailing_back 2\n");
  // What was replicated before is still there.
  w.expect_readable('b', "a", 100, 0, 60s);
  EXPECT_EQ(mqdr.terminate(30s), 0);
}

class FailoverDaemonKill : public ::testing::TestWithParam<std::string> {};

// Kills the primaries of the pairs driven (one kind, or all three at once).
TEST_P(FailoverDaemonKill, KillNineOfThePrimaries) {
  World w(GetParam());
  MQDR_REQUIRE_BROKER(w.ep.kafka_a);
  MQDR_REQUIRE_BROKER(w.ep.kafka_b);
  w.seed();
  const auto config = w.config();
  rt::MqdrProcess mqdr(config, w.dir / "mqdr.log");
  mqdr.start();
  ASSERT_TRUE(w.wait_running()) << w.status().dump(2) << slurp(w.dir / "mqdr.log");

  // Replicated before the kill: wait until the standby holds all of it.
  w.write('a', "a", 500, 0);
  ASSERT_TRUE(kt::wait_until([&] { return w.standby_holds(500); }, 120s)) << w.status().dump(2);

  RestartPrimaries restart;
  restart.armed = true;
  restart.which = w.primaries();
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_EQ(mqdr::test::harness("kill9" + w.primaries()), 0);
  const auto last_killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(kt::wait_until([&] { return w.clients().value("active", "") == "standby"; }, 120s,
                             100ms))
      << w.group().dump(2) << slurp(w.dir / "mqdr.log");
  const auto switched = std::chrono::steady_clock::now();
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  std::printf("[%s] kill -9 of%s -> clients file switched: %lld ms after the first kill, %lld ms "
              "after the last\n",
              GetParam().c_str(), w.primaries().c_str(),
              static_cast<long long>(duration_cast<milliseconds>(switched - killed).count()),
              static_cast<long long>(duration_cast<milliseconds>(switched - last_killed).count()));
  auto clients = w.clients();
  if (w.k) {
    EXPECT_EQ(clients["clusters"]["kafka-a"]["active"], "kafka-b");
    EXPECT_EQ(clients["clusters"]["kafka-a"]["bootstrap_servers"], w.ep.kafka_b);
  }
  if (w.n) {
    EXPECT_EQ(clients["clusters"]["nats-a"]["active"], "nats-b");
  }
  if (w.r) {
    EXPECT_EQ(clients["clusters"]["rabbit-a"]["active"], "rabbit-b");
  }
  ASSERT_TRUE(kt::wait_until([&] { return w.group().value("state", "") == "failed_over"; }, 60s))
      << w.group().dump(2);
  EXPECT_TRUE(w.group()["last_switch"]["automatic"].get<bool>());

  // mqdr itself dies while failed over, and resumes in that state: forward mirrors stay off.
  mqdr.kill9();
  mqdr.start();
  ASSERT_TRUE(kt::wait_until([&] { return w.group().contains("group"); }, 60s)) << slurp(w.dir / "mqdr.log");
  EXPECT_EQ(w.group()["state"], "failed_over");
  EXPECT_EQ(w.group()["epoch"], 1);
  EXPECT_FALSE(w.mirror_running("fo-kafka"));
  EXPECT_FALSE(w.mirror_running("fo-nats"));
  EXPECT_FALSE(w.mirror_running("fo-rabbit"));

  // Consumers on the standbys find everything replicated before the kill.
  w.expect_readable('b', "a", 500, 0, 120s);

  // Written on the standbys during the outage.
  w.write('b', "b", 100, 500);

  ASSERT_EQ(mqdr::test::harness("up" + w.primaries()), 0);
  restart.armed = false;
  ASSERT_TRUE(kt::wait_until([&] { return w.group().value("reverse_replication", false); }, 180s))
      << w.group().dump(2) << slurp(w.dir / "mqdr.log");

  int rc = -1;
  ASSERT_TRUE(kt::wait_until(
      [&] {
        rc = run_cli({"failback", "-c", config.string(), "--group", "all"}, w.dir / "fb.log");
        return rc == 0;
      },
      240s, 2s))
      << rc << "\n" << slurp(w.dir / "fb.log") << "\n" << w.group().dump(2);
  EXPECT_EQ(w.clients()["active"], "primary");
  EXPECT_EQ(w.clients()["epoch"], 2);
  EXPECT_EQ(w.group()["state"], "replicating");

  if (w.r) {
    // The reverse mirror's capture queue on the standby went with it (it would otherwise collect
    // everything the forward mirror publishes there); the forward one on the primary is back.
    rt::Client ra(rt::node_a());
    rt::Client rb(rt::node_b());
    EXPECT_FALSE(rb.counts("mqdr.capture.fo-rabbit.reverse." + w.exchange).has_value());
    EXPECT_TRUE(ra.counts("mqdr.capture.fo-rabbit." + w.exchange).has_value());
  }

  // Nothing written on the standbys during the outage is lost: it is on the primaries now.
  w.expect_readable('a', "b", 100, 500, 120s);
  EXPECT_EQ(mqdr.terminate(30s), 0);
}

INSTANTIATE_TEST_SUITE_P(Kinds, FailoverDaemonKill,
                         ::testing::Values("kafka", "nats", "rabbitmq", "all"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace mqdr
