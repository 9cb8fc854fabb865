// The failover driver end to end with fakes of our own interfaces (Probe, MirrorOps,
// MirrorControl): no broker. Waits are bounded (wait_for_state, wait_until); no timing asserted.

#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

#include "failover/state_store.hpp"
#include "mqdr/failover.hpp"
#include "mqdr/failover_admin.hpp"
#include "mqdr/failover_machine.hpp"
#include "tests/unit/failover/test_dir.hpp"

namespace mqdr {
namespace {

using namespace std::chrono_literals;

// Everything the fakes share with the test.
struct World {
  std::mutex mu;
  std::map<std::string, bool> up = {{"a", true}, {"b", true}};
  std::map<std::string, MirrorConfig> running;  // mirror workers
  std::map<std::string, Lag> ops_lag;           // MirrorOps::lag by mirror name (default 0)
  double stats_lag_seconds = 0.5;
  bool mirror_healthy_while_source_down = false;  // holistic veto
  Status promote_status = Status::ok();
  std::vector<std::string> calls;  // "<op> <mirror>"
  std::atomic<int> probes{0};

  void set_up(const std::string& c, bool v) {
    std::lock_guard l(mu);
    up[c] = v;
  }
  bool is_up(const std::string& c) {
    std::lock_guard l(mu);
    return up[c];
  }
  bool is_running(const std::string& m) {
    std::lock_guard l(mu);
    return running.count(m) != 0;
  }
  void call(const std::string& c) {
    std::lock_guard l(mu);
    calls.push_back(c);
  }
  int count(const std::string& c) {
    std::lock_guard l(mu);
    return static_cast<int>(std::count(calls.begin(), calls.end(), c));
  }
};

class FakeProbe : public Probe {
 public:
  FakeProbe(World& w, std::string cluster) : w_(w), cluster_(std::move(cluster)) {}
  ProbeResult check(Duration) override {
    ++w_.probes;
    ProbeResult r;
    r.ok = w_.is_up(cluster_);
    r.latency_ms = 1.5;
    if (!r.ok) r.message = "connection refused";
    return r;
  }

 private:
  World& w_;
  std::string cluster_;
};

class FakeOps : public MirrorOps {
 public:
  FakeOps(World& w, MirrorConfig m) : w_(w), m_(std::move(m)) {}
  Lag lag(Duration) override {
    w_.call("lag " + m_.name);
    if (!w_.is_up(m_.source)) return {};
    std::lock_guard l(w_.mu);
    auto it = w_.ops_lag.find(m_.name);
    return it == w_.ops_lag.end() ? Lag{0, 0} : it->second;
  }
  Status final_sync(Duration) override {
    w_.call("final_sync " + m_.name);
    return w_.is_up(m_.source) ? Status::ok() : Status::retry("source down");
  }
  Status promote(Duration) override {
    w_.call("promote " + m_.name);
    std::lock_guard l(w_.mu);
    return w_.promote_status;
  }
  VerifyResult verify(Duration) override {
    w_.call("verify " + m_.name);
    VerifyResult v;
    if (!w_.is_up(m_.source)) v.unchecked.push_back("source down: counts not compared");
    return v;
  }
  nlohmann::json unreplicated(Duration) override {
    w_.call("unreplicated " + m_.name);
    return {{"orders/0", {{"records", 3}}}};
  }

 private:
  World& w_;
  MirrorConfig m_;
};

BrokerRegistry registry(World& w) {
  BrokerRegistry r;
  BrokerKind k;
  k.make_probe = [&w](const ClusterConfig& c) { return std::make_unique<FakeProbe>(w, c.name); };
  k.make_mirror_ops = [&w](const MirrorContext& ctx) {
    return std::make_unique<FakeOps>(w, ctx.mirror);
  };
  r.add(ClusterKind::kafka, k);
  return r;
}

MirrorControl control(World& w) {
  MirrorControl c;
  c.start = [&w](const MirrorConfig& m) {
    std::lock_guard l(w.mu);
    w.running[m.name] = m;
  };
  c.stop = [&w](const std::string& name) {
    std::lock_guard l(w.mu);
    return w.running.erase(name) > 0;
  };
  c.stats = [&w](const std::string& name) -> std::optional<StatsSnapshot> {
    std::lock_guard l(w.mu);
    auto it = w.running.find(name);
    if (it == w.running.end()) return std::nullopt;
    StatsSnapshot s;
    s.name = name;
    bool source_up = w.up[it->second.source];
    s.state = source_up || w.mirror_healthy_while_source_down ? "running" : "backoff";
    if (s.state != "running") s.last_error = "source unreachable";
    s.lag_seconds = w.stats_lag_seconds;
    s.lag_records = 0;
    return s;
  };
  return c;
}

std::string hook(const failover::test::TempDir& dir, const std::string& name, const std::string& body) {
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

nlohmann::json read_json(const std::filesystem::path& p) { return nlohmann::json::parse(read(p)); }

template <typename F>
bool wait_until(F f, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!f()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class FailoverController_ : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = std::make_shared<Config>();
    c->daemon.state_dir = dir.path();
    for (auto [name, servers] : {std::pair{"a", "127.0.0.1:19092"}, {"b", "127.0.0.1:29092"}}) {
      ClusterConfig cl;
      cl.name = name;
      cl.kind = ClusterKind::kafka;
      cl.kafka.bootstrap_servers = servers;
      c->clusters[name] = cl;
    }
    MirrorConfig m;
    m.name = "m1";
    m.source = "a";
    m.target = "b";
    m.kind = ClusterKind::kafka;
    c->mirrors.push_back(m);
    FailoverGroupConfig g;
    g.name = "g";
    g.pairs = {{"a", "b"}};
    g.mode = FailoverMode::automatic;
    g.health = {20ms, 50ms, 3, 2};
    g.max_lag = 30s;
    g.hold_down = 1h;
    g.drain_timeout = 300ms;
    g.clients.file = dir / "clients" / "g.json";
    g.clients.hook_timeout = 5s;
    c->failover.push_back(g);
    config = c;
  }

  std::unique_ptr<FailoverController> make() {
    FailoverOptions o;
    o.retry_interval = 10ms;
    auto ctl = std::make_unique<FailoverController>(config, reg, control(world), dir.path(), o);
    // What the daemon does: start the configured mirrors the controller allows.
    for (const auto& m : config->mirrors) {
      if (ctl->should_run(m.name)) control(world).start(m);
    }
    return ctl;
  }

  FailoverGroupConfig& group() { return config->failover[0]; }

  nlohmann::json status(FailoverController& ctl) { return ctl.status()[0]; }

  std::vector<nlohmann::json> events() {
    std::vector<nlohmann::json> out;
    std::istringstream in(read(dir / "failover" / "g.events.jsonl"));
    std::string line;
    while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  bool aborted(FailoverController& ctl) {
    auto st = status(ctl);
    return st.contains("last_switch") &&
           st["last_switch"]["outcome"].get<std::string>().starts_with("aborted");
  }

  // The event log shows the group entered `blocked` for `why`.
  bool blocked_because(const std::string& why) {
    for (const auto& e : events()) {
      if (e["event"] == "state" && e["state"] == "blocked" &&
          e["reason"].get<std::string>().find(why) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  failover::test::TempDir dir;
  World world;
  BrokerRegistry reg = registry(world);
  std::shared_ptr<Config> config;
};

TEST_F(FailoverController_, AutomaticFailoverAndFailback) {
  auto out = dir / "hook.out";
  group().clients.hooks = {
      hook(dir, "announce.sh", "echo \"$MQDR_GROUP $MQDR_EPOCH $MQDR_STATE $MQDR_ACTIVE\" >> " +
                                   out.string())};
  auto ctl = make();
  ctl->start();
  ASSERT_TRUE(wait_until([&] { return status(*ctl)["clusters"][1]["up"] == true; }));
  world.set_up("a", false);  // the primary dies; its mirror breaks too
  ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s)) << status(*ctl).dump(2);

  auto clients = read_json(group().clients.file);
  EXPECT_EQ(clients["active"], "standby");
  EXPECT_EQ(clients["epoch"], 1);
  EXPECT_EQ(clients["clusters"]["a"]["active"], "b");
  EXPECT_EQ(clients["clusters"]["a"]["bootstrap_servers"], "127.0.0.1:29092");
  // With its source down the stop may finish in the background.
  EXPECT_TRUE(wait_until([&] { return !world.is_running("m1"); }));
  EXPECT_EQ(world.count("promote m1"), 1);
  // The primary did not answer: nothing to drain, nothing to compare against (recorded as
  // unchecked instead of waiting for a connection timeout).
  EXPECT_EQ(world.count("verify m1"), 0);
  EXPECT_EQ(world.count("lag m1"), 0);
  EXPECT_EQ(read(out), "g 1 failed_over standby\n");
  EXPECT_FALSE(ctl->should_run("m1"));

  auto st = status(*ctl);
  EXPECT_EQ(st["epoch"], 1);
  EXPECT_EQ(st["active"], "standby");
  EXPECT_TRUE(st["last_switch"]["automatic"]);
  EXPECT_EQ(st["last_switch"]["outcome"], "completed");
  EXPECT_EQ(st["last_switch"]["steps"].size(), 7u);
  EXPECT_TRUE(st["last_switch"]["summary"].contains("rto_from_trigger_ms"));
  EXPECT_TRUE(st["last_switch"]["summary"].contains("rto_from_first_failure_ms"));
  auto failback = ctl->request_failback("g");
  EXPECT_EQ(failback.kind, Decision::Kind::refused);
  EXPECT_NE(failback.reason.find("old primary"), std::string::npos) << failback.reason;

  // The old primary returns: what it holds is reported and reverse replication starts.
  world.set_up("a", true);
  ASSERT_TRUE(wait_until([&] { return world.is_running("m1.reverse"); }));
  EXPECT_EQ(world.count("unreplicated m1"), 1);
  {
    std::lock_guard l(world.mu);
    EXPECT_EQ(world.running["m1.reverse"].source, "b");
    EXPECT_EQ(world.running["m1.reverse"].target, "a");
  }
  ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 5s));
  EXPECT_EQ(status(*ctl)["last_switch"]["unreplicated"]["m1"]["orders/0"]["records"], 3);

  auto d = ctl->request_failback("g");
  ASSERT_EQ(d.kind, Decision::Kind::started) << d.reason;
  ASSERT_TRUE(ctl->wait_for_state("g", "replicating", 10s)) << status(*ctl).dump(2);
  EXPECT_TRUE(world.is_running("m1"));
  EXPECT_FALSE(world.is_running("m1.reverse"));
  EXPECT_GE(world.count("lag m1.reverse"), 1);
  EXPECT_EQ(world.count("promote m1.reverse"), 1);
  clients = read_json(group().clients.file);
  EXPECT_EQ(clients["active"], "primary");
  EXPECT_EQ(clients["epoch"], 2);
  EXPECT_EQ(clients["clusters"]["a"]["active"], "a");
  EXPECT_EQ(read(out), "g 1 failed_over standby\ng 2 replicating primary\n");
  EXPECT_TRUE(ctl->should_run("m1"));

  auto m = ctl->metrics();
  ASSERT_EQ(m.groups.size(), 1u);
  EXPECT_EQ(m.groups[0].state, "replicating");
  EXPECT_EQ(m.groups[0].epoch, 2u);
  EXPECT_EQ(m.groups[0].failovers_total, 1u);
  EXPECT_EQ(m.groups[0].failbacks_total, 1u);
  EXPECT_EQ(m.states.size(), 6u);
  ASSERT_EQ(m.clusters.size(), 2u);
  EXPECT_GT(m.clusters[0].probe_failures_total, 0u);

  // Every step of both switches is in the event log with its duration.
  int steps = 0;
  for (const auto& e : events()) {
    if (e["event"] == "step") {
      ++steps;
      EXPECT_TRUE(e.contains("duration_ms"));
    }
  }
  EXPECT_EQ(steps, 7 + 8);
}

TEST_F(FailoverController_, ManualModeWaitsForTheOperator) {
  group().mode = FailoverMode::manual;
  auto ctl = make();
  ctl->start();
  world.set_up("a", false);
  ASSERT_TRUE(wait_until([&] { return status(*ctl)["primary_failures"].get<int>() >= 6; }));
  EXPECT_EQ(status(*ctl)["state"], "suspect");
  EXPECT_EQ(status(*ctl)["epoch"], 0);
  auto d = ctl->request_failover("g", false, "site A lost");
  ASSERT_EQ(d.kind, Decision::Kind::started) << d.reason;
  ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s));
  EXPECT_EQ(status(*ctl)["last_switch"]["reason"], "site A lost");
  EXPECT_FALSE(status(*ctl)["last_switch"]["automatic"]);
  // A second request is refused, an unknown group is not found.
  EXPECT_EQ(ctl->request_failover("g", true, "").kind, Decision::Kind::refused);
  EXPECT_EQ(ctl->request_failover("nope", false, "").kind, Decision::Kind::not_found);
  EXPECT_EQ(ctl->request_failback("nope").kind, Decision::Kind::not_found);
}

TEST_F(FailoverController_, PlannedSwitchoverDrainsFirst) {
  auto ctl = make();
  ctl->start();
  ASSERT_TRUE(wait_until([&] { return status(*ctl)["clusters"][1]["up"] == true; }));
  {
    std::lock_guard l(world.mu);
    world.ops_lag["m1"] = Lag{5, 1.0};
  }
  auto d = ctl->request_failover("g", false, "drill");
  ASSERT_EQ(d.kind, Decision::Kind::started) << d.reason;
  ASSERT_TRUE(wait_until([&] { return world.count("lag m1") >= 2; }));
  EXPECT_TRUE(world.is_running("m1"));  // the mirror keeps running while it drains
  {
    std::lock_guard l(world.mu);
    world.ops_lag["m1"] = Lag{0, 0};
  }
  ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s));
  EXPECT_FALSE(world.is_running("m1"));
  // The primary is up: reverse replication starts at once.
  EXPECT_TRUE(world.is_running("m1.reverse"));
  auto steps = status(*ctl)["last_switch"]["steps"];
  EXPECT_EQ(steps[1]["step"], "drain");
  EXPECT_TRUE(steps[1]["detail"]["mirrors"]["m1"]["drained"]);
  EXPECT_EQ(steps[1]["detail"]["mirrors"]["m1"]["before"]["records"], 5);
}

TEST_F(FailoverController_, MaxLagBlocksUnlessForced) {
  world.stats_lag_seconds = 120;
  auto ctl = make();
  ctl->start();
  world.set_up("a", false);
  ASSERT_TRUE(ctl->wait_for_state("g", "blocked", 10s)) << status(*ctl).dump(2);
  EXPECT_NE(status(*ctl)["reason"].get<std::string>().find("max_lag"), std::string::npos);
  EXPECT_TRUE(world.is_running("m1"));
  auto d = ctl->request_failover("g", false, "");
  EXPECT_EQ(d.kind, Decision::Kind::refused);
  EXPECT_NE(d.reason.find("max_lag"), std::string::npos) << d.reason;
  d = ctl->request_failover("g", true, "accept the loss");
  ASSERT_EQ(d.kind, Decision::Kind::started) << d.reason;
  ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s));
  EXPECT_TRUE(status(*ctl)["last_switch"]["force"]);
}

TEST_F(FailoverController_, FailingFenceHookAbortsUnlessForced) {
  auto fenced = dir / "fenced";
  group().fence_hooks = {hook(dir, "fence.sh",
                              "echo \"$MQDR_HOOK $MQDR_STATE $MQDR_EPOCH\" >> " + fenced.string() +
                                  "\necho 'cannot reach the firewall' >&2\nexit 1")};
  auto ctl = make();
  ctl->start();
  ASSERT_TRUE(wait_until([&] { return status(*ctl)["clusters"][1]["up"] == true; }));
  ASSERT_EQ(ctl->request_failover("g", false, "").kind, Decision::Kind::started);
  ASSERT_TRUE(wait_until([&] { return aborted(*ctl); }));
  // blocked, and back to replicating by itself once the (healthy) primary passed `recoveries`
  // probes: nothing was switched.
  ASSERT_TRUE(ctl->wait_for_state("g", "replicating", 10s));
  EXPECT_TRUE(blocked_because("fence hook"));
  auto st = status(*ctl);
  EXPECT_EQ(st["active"], "primary");
  EXPECT_TRUE(world.is_running("m1"));  // never stopped: fencing comes first
  EXPECT_EQ(world.count("promote m1"), 0);
  EXPECT_FALSE(std::filesystem::exists(group().clients.file));
  EXPECT_EQ(read(fenced), "fence failing_over 1\n");

  ASSERT_EQ(ctl->request_failover("g", true, "fenced by hand").kind, Decision::Kind::started);
  ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s));
  EXPECT_EQ(read_json(group().clients.file)["epoch"], 2);
}

TEST_F(FailoverController_, FailingClientHookNeverBlocksTheSwitch) {
  group().clients.hooks = {hook(dir, "bad.sh", "exit 7")};
  auto ctl = make();
  ctl->start();
  ASSERT_TRUE(wait_until([&] { return status(*ctl)["clusters"][1]["up"] == true; }));
  ASSERT_EQ(ctl->request_failover("g", false, "").kind, Decision::Kind::started);
  ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s));
  auto steps = status(*ctl)["last_switch"]["steps"];
  EXPECT_EQ(steps[5]["step"], "switch_clients");
  EXPECT_EQ(steps[5]["detail"]["hooks"][0]["exit_code"], 7);
}

TEST_F(FailoverController_, HolisticVetoWhenTheMirrorStillReplicates) {
  world.mirror_healthy_while_source_down = true;
  auto ctl = make();
  ctl->start();
  world.set_up("a", false);
  ASSERT_TRUE(wait_until([&] { return status(*ctl)["primary_failures"].get<int>() >= 8; }));
  EXPECT_EQ(status(*ctl)["state"], "suspect");
  EXPECT_EQ(status(*ctl)["epoch"], 0);
}

TEST_F(FailoverController_, PromoteFailureAbortsAndResumesForwardMirrors) {
  world.promote_status = Status::fatal("stream source cannot be removed");
  auto ctl = make();
  ctl->start();
  ASSERT_TRUE(wait_until([&] { return status(*ctl)["clusters"][1]["up"] == true; }));
  ASSERT_EQ(ctl->request_failover("g", false, "").kind, Decision::Kind::started);
  ASSERT_TRUE(wait_until([&] { return aborted(*ctl); }));
  ASSERT_TRUE(ctl->wait_for_state("g", "replicating", 10s));
  EXPECT_TRUE(blocked_because("promote of mirror m1 failed"));
  EXPECT_TRUE(world.is_running("m1"));
  EXPECT_TRUE(ctl->should_run("m1"));
  EXPECT_FALSE(std::filesystem::exists(group().clients.file));
}

TEST_F(FailoverController_, FailbackAbortsWhileTheReverseMirrorLags) {
  auto ctl = make();
  ctl->start();
  ASSERT_TRUE(wait_until([&] { return status(*ctl)["clusters"][1]["up"] == true; }));
  ASSERT_EQ(ctl->request_failover("g", false, "").kind, Decision::Kind::started);
  ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s));
  ASSERT_TRUE(world.is_running("m1.reverse"));
  {
    std::lock_guard l(world.mu);
    world.ops_lag["m1.reverse"] = Lag{42, 3.0};
  }
  auto d = ctl->request_failback("g");
  ASSERT_EQ(d.kind, Decision::Kind::started) << d.reason;
  ASSERT_TRUE(wait_until(
      [&] { return status(*ctl)["epoch"] == 2 && status(*ctl)["state"] == "failed_over"; }));
  ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s));
  EXPECT_NE(status(*ctl)["reason"].get<std::string>().find("42 records"), std::string::npos)
      << status(*ctl)["reason"];
  EXPECT_TRUE(world.is_running("m1.reverse"));
  EXPECT_FALSE(world.is_running("m1"));
  EXPECT_EQ(read_json(group().clients.file)["active"], "standby");
}

TEST_F(FailoverController_, RestartWhileFailedOverKeepsForwardMirrorsOff) {
  {
    auto ctl = make();
    ctl->start();
    ASSERT_TRUE(wait_until([&] { return status(*ctl)["clusters"][1]["up"] == true; }));
    ASSERT_EQ(ctl->request_failover("g", false, "").kind, Decision::Kind::started);
    ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s));
  }
  world.running.clear();  // the daemon process is gone
  auto ctl = make();
  EXPECT_FALSE(ctl->should_run("m1"));
  EXPECT_FALSE(world.is_running("m1"));
  ctl->start();
  ASSERT_TRUE(wait_until([&] { return world.is_running("m1.reverse"); }));
  auto st = status(*ctl);
  EXPECT_EQ(st["state"], "failed_over");
  EXPECT_EQ(st["epoch"], 1);
  EXPECT_EQ(st["active"], "standby");
  // After a restart the old primary must answer a probe before a failback is accepted.
  ASSERT_TRUE(wait_until([&] { return status(*ctl)["clusters"][0]["up"] == true; }));
  auto d = ctl->request_failback("g");
  ASSERT_EQ(d.kind, Decision::Kind::started) << d.reason;
  ASSERT_TRUE(ctl->wait_for_state("g", "replicating", 10s));
  EXPECT_TRUE(world.is_running("m1"));
}

TEST_F(FailoverController_, CrashDuringFailingOverResumesTheRemainingSteps) {
  auto fenced = dir / "fenced";
  group().fence_hooks = {hook(dir, "fence.sh", "echo fenced >> " + fenced.string())};
  // The state file a process left when it died during `promote` (step 3).
  {
    failover::StateStore store(dir / "failover");
    failover::Machine m("g", failover::MachineSettings::from(group()));
    failover::GroupData d;
    d.state = failover::GroupState::failing_over;
    d.epoch = 4;
    d.step_index = 3;
    d.since = std::chrono::system_clock::now();
    failover::SwitchRecord r;
    r.kind = failover::SwitchKind::failover;
    r.epoch = 4;
    r.started_at = d.since;
    r.steps = {{failover::Step::fence, true, 1, {}},
               {failover::Step::drain, true, 1, {}},
               {failover::Step::stop_mirrors, true, 1, {}}};
    d.current = r;
    m.restore(d, {std::chrono::steady_clock::now(), d.since});
    store.save("g", m.to_json());
  }
  auto ctl = make();
  EXPECT_FALSE(ctl->should_run("m1"));  // already fenced and stopped before the crash
  EXPECT_EQ(status(*ctl)["state"], "failing_over");
  EXPECT_EQ(status(*ctl)["step"], "promote");
  ctl->start();
  ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s));
  EXPECT_FALSE(std::filesystem::exists(fenced));  // steps done before the crash are not rerun
  EXPECT_EQ(world.count("promote m1"), 1);
  EXPECT_EQ(read_json(group().clients.file)["epoch"], 4);
  EXPECT_EQ(status(*ctl)["last_switch"]["steps"].size(), 7u);
}

TEST_F(FailoverController_, StopDuringDrainResumesAfterRestart) {
  group().drain_timeout = 1h;
  {
    std::lock_guard l(world.mu);
    world.ops_lag["m1"] = Lag{10, 1.0};
  }
  {
    auto ctl = make();
    ctl->start();
    ASSERT_TRUE(wait_until([&] { return status(*ctl)["clusters"][1]["up"] == true; }));
    ASSERT_EQ(ctl->request_failover("g", false, "").kind, Decision::Kind::started);
    ASSERT_TRUE(wait_until([&] { return world.count("lag m1") >= 2; }));
    ctl->stop();
    EXPECT_EQ(status(*ctl)["step"], "drain");
  }
  auto saved = read_json(dir / "failover" / "g.json");
  EXPECT_EQ(saved["state"], "failing_over");
  EXPECT_EQ(saved["step_index"], 1);
  world.running.clear();
  auto ctl = make();
  EXPECT_TRUE(ctl->should_run("m1"));  // before stop_mirrors: it must run to drain
  {
    std::lock_guard l(world.mu);
    world.ops_lag["m1"] = Lag{0, 0};
  }
  ctl->start();
  ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s));
  EXPECT_EQ(status(*ctl)["epoch"], 1);
}

TEST_F(FailoverController_, CorruptStateFileBlocksTheGroupWithoutCrashing) {
  std::filesystem::create_directories(dir / "failover");
  std::filesystem::create_directories(dir / "clients");
  std::ofstream(dir / "failover" / "g.json") << "{\"version\": 1, \"state\": \"fail";
  std::ofstream(group().clients.file) << R"({"group": "g", "epoch": 9, "active": "standby"})";
  auto ctl = make();
  auto st = status(*ctl);
  EXPECT_EQ(st["state"], "blocked");
  EXPECT_EQ(st["epoch"], 9);
  EXPECT_NE(st["reason"].get<std::string>().find("not valid JSON"), std::string::npos)
      << st["reason"];
  bool kept = false;
  for (const auto& e : std::filesystem::directory_iterator(dir / "failover")) {
    kept = kept || e.path().filename().string().starts_with("g.json.corrupt-");
  }
  EXPECT_TRUE(kept);
  // The new state file is sound.
  EXPECT_EQ(read_json(dir / "failover" / "g.json")["state"], "blocked");
}

TEST_F(FailoverController_, SecondControllerOnTheSameStateDirIsRefused) {
  auto ctl = make();
  EXPECT_THROW(make(), std::runtime_error);
}

TEST_F(FailoverController_, WitnessesMustAgree) {
  // A witness that still sees the primary up.
  httplib::Server witness;
  std::atomic<bool> sees_down{false};
  witness.Get("/v1/status", [&](const httplib::Request&, httplib::Response& res) {
    nlohmann::json j = {{"clusters", {{{"name", "a"}, {"up", !sees_down.load()}}}}};
    res.set_content(j.dump(), "application/json");
  });
  int port = witness.bind_to_any_port("127.0.0.1");
  std::thread server([&] { witness.listen_after_bind(); });
  group().witnesses = {"http://127.0.0.1:" + std::to_string(port) + "/v1/status"};
  {
    auto ctl = make();
    ctl->start();
    world.set_up("a", false);
    ASSERT_TRUE(ctl->wait_for_state("g", "blocked", 10s)) << status(*ctl).dump(2);
    EXPECT_NE(status(*ctl)["reason"].get<std::string>().find("witnesses"), std::string::npos);
    // Once the witness agrees and the primary answered again, a new outage fails over.
    sees_down = true;
    world.set_up("a", true);
    ASSERT_TRUE(ctl->wait_for_state("g", "replicating", 10s));
    world.set_up("a", false);
    ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s)) << status(*ctl).dump(2);
  }
  witness.stop();
  server.join();
}

TEST_F(FailoverController_, AdminHandlersMapDecisionsToHttp) {
  auto ctl = make();
  ctl->start();
  auto failover = failover_post_handler(*ctl);
  auto failback = failback_post_handler(*ctl);
  EXPECT_EQ(failover({"nope"}, {}, nullptr).status, 404);
  EXPECT_EQ(failback({"nope"}, {}, nullptr).status, 404);
  EXPECT_EQ(failback({"g"}, {}, nullptr).status, 409);
  // The standby is down: refused with the reason, accepted with ?force=true.
  world.set_up("b", false);
  // Down for the machine after `failures` (3) failed probes in a row.
  ASSERT_TRUE(wait_until([&] {
    auto m = ctl->metrics();
    return m.clusters.size() == 2 && m.clusters[1].probe_failures_total >= 3;
  }));
  auto refused = failover({"g"}, {}, nlohmann::json{{"reason", "drill"}});
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(refused.body["error"].get<std::string>().find("standby"), std::string::npos);
  auto started = failover({"g"}, {{"force", "true"}}, nlohmann::json{{"reason", "drill"}});
  EXPECT_EQ(started.status, 202) << started.body.dump();
  ASSERT_TRUE(ctl->wait_for_state("g", "failed_over", 10s));
  EXPECT_EQ(status(*ctl)["last_switch"]["reason"], "drill");

  auto families = failover_metric_families(ctl->metrics());
  std::map<std::string, MetricFamily> by_name;
  for (auto& f : families) by_name[f.name] = f;
  ASSERT_TRUE(by_name.count("mqdr_failover_state"));
  double current = 0;
  for (const auto& s : by_name["mqdr_failover_state"].samples) {
    if (s.labels.at("state") == "failed_over") current = s.value;
  }
  EXPECT_EQ(current, 1.0);
  EXPECT_EQ(by_name["mqdr_failover_state"].samples.size(), 6u);
  EXPECT_EQ(by_name["mqdr_failover_epoch"].samples.at(0).value, 1.0);
  EXPECT_EQ(by_name["mqdr_failover_cluster_up"].samples.size(), 2u);
}

}  // namespace
}  // namespace mqdr
