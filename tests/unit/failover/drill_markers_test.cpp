// The drill's marker bookkeeping (src/failover/drill_markers.cpp) over fake MirrorOps: markers
// are written through every mirror, the reverse run goes through `<mirror>.reverse` with the sides
// swapped, lost markers and markers a resuming consumer missed are counted once each, a mirror
// without a marker channel is reported unchecked (not counted, not an error), and a broker error
// while writing fails the run naming the mirror.

#include <gtest/gtest.h>

#include <map>

#include "failover/drill_markers.hpp"

namespace mqdr::failover {
namespace {

struct Script {
  std::map<std::string, Status> prepare;  // by mirror name; absent: ok
  std::map<std::string, DrillCheck> check;
  std::vector<std::string> calls;
};

class DrillOps : public MirrorOps {
 public:
  DrillOps(Script& s, MirrorContext ctx) : s_(s), ctx_(std::move(ctx)) {}
  Lag lag(Duration) override { return {}; }
  Status final_sync(Duration) override { return Status::ok(); }
  Status promote(Duration) override { return Status::ok(); }
  VerifyResult verify(Duration) override { return {}; }
  nlohmann::json unreplicated(Duration) override { return nlohmann::json::object(); }
  Status drill_prepare(Duration) override {
    s_.calls.push_back("prepare " + ctx_.mirror.name + " " + ctx_.source.name + "->" + ctx_.target.name);
    auto it = s_.prepare.find(ctx_.mirror.name);
    return it == s_.prepare.end() ? Status::ok() : it->second;
  }
  Status drill_write(DrillMarkers& m, int count, int consume, Duration) override {
    s_.calls.push_back("write " + ctx_.mirror.name + " " + m.id + " " + m.consumer);
    m.written = count;
    m.consumed = consume;
    return Status::ok();
  }
  Status drill_check(const DrillMarkers& m, DrillCheck& out, Duration) override {
    s_.calls.push_back("check " + ctx_.mirror.name + " " + m.id);
    out = s_.check[ctx_.mirror.name];
    return Status::ok();
  }

 private:
  Script& s_;
  MirrorContext ctx_;
};

class MarkerRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config.daemon.state_dir = "/tmp/unused";
    for (auto [name, kind] : {std::pair{"ka", ClusterKind::kafka}, {"kb", ClusterKind::kafka},
                              {"na", ClusterKind::nats}, {"nb", ClusterKind::nats}}) {
      ClusterConfig c;
      c.name = name;
      c.kind = kind;
      config.clusters[name] = c;
    }
    for (auto [name, src, dst, kind] : {std::tuple{"mk", "ka", "kb", ClusterKind::kafka},
                                        {"mn", "na", "nb", ClusterKind::nats}}) {
      MirrorConfig m;
      m.name = name;
      m.source = src;
      m.target = dst;
      m.kind = kind;
      config.mirrors.push_back(m);
    }
    BrokerKind k;
    k.make_mirror_ops = [this](const MirrorContext& ctx) -> MirrorOpsPtr {
      return std::make_unique<DrillOps>(script, ctx);
    };
    registry.add(ClusterKind::kafka, k);
    registry.add(ClusterKind::nats, k);
  }
  std::vector<const MirrorConfig*> mirrors() const { return {&config.mirrors[0], &config.mirrors[1]}; }

  Config config;
  BrokerRegistry registry;
  Script script;
  std::vector<std::string> said;
};

TEST(DrillMarker, FormatsAndParsesOnlyItsOwnDrill) {
  EXPECT_EQ(drill_marker("g-1-f", 7), "mqdr-drill/g-1-f/7");
  EXPECT_EQ(parse_drill_marker("mqdr-drill/g-1-f/7", "g-1-f"), 7);
  EXPECT_EQ(parse_drill_marker("mqdr-drill/g-1-f/7", "g-1-r"), std::nullopt);
  EXPECT_EQ(parse_drill_marker("mqdr-drill/g-1-f/", "g-1-f"), std::nullopt);
  EXPECT_EQ(parse_drill_marker("mqdr-drill/g-1-f/7x", "g-1-f"), std::nullopt);
  EXPECT_EQ(parse_drill_marker("mqdr-drill/g-1-f/-1", "g-1-f"), std::nullopt);
  EXPECT_EQ(parse_drill_marker("heartbeat", "g-1-f"), std::nullopt);
}

TEST_F(MarkerRunTest, CountsLostAndMissedMarkersOncePerMarker) {
  DrillCheck k;
  k.on_target = 99;
  k.lost = {7};
  k.resume_checked = true;
  k.resumed = 49;
  k.resume_missing = {7, 60};  // 7 is lost and missed: one marker
  script.check["mk"] = k;
  DrillCheck n;
  n.on_target = 100;
  n.resume_checked = true;
  n.resumed = 50;
  script.check["mn"] = n;
  MarkerRun run(config, registry, mirrors(), false, "the group", [&](const std::string& s) { said.push_back(s); });
  ASSERT_EQ(run.write(Duration(1000)), "");
  std::string error;
  EXPECT_EQ(run.check(Duration(1000), error), 2);
  EXPECT_EQ(error, "");
  const auto& r = run.report();
  EXPECT_EQ(r["mk"]["written"], MarkerRun::kMarkers);
  EXPECT_EQ(r["mk"]["consumed"], MarkerRun::kConsumed);
  EXPECT_EQ(r["mk"]["lost"], nlohmann::json::array({7}));
  EXPECT_EQ(r["mk"]["consumer_resume"]["missing"], nlohmann::json::array({7, 60}));
  EXPECT_EQ(r["mn"]["lost"], nlohmann::json::array());
  // Names safe for NATS subjects and durable names.
  EXPECT_EQ(r["mk"]["consumer"], "mqdr-drill-the-group");
  EXPECT_EQ(r["mk"]["id"].get<std::string>().find(' '), std::string::npos);
  EXPECT_EQ(r["mk"]["id"].get<std::string>().substr(r["mk"]["id"].get<std::string>().size() - 2), "-f");
}

TEST_F(MarkerRunTest, ReverseRunGoesThroughTheReverseMirrorsWithTheSidesSwapped) {
  MarkerRun run(config, registry, mirrors(), true, "g", [&](const std::string& s) { said.push_back(s); });
  ASSERT_EQ(run.write(Duration(1000)), "");
  EXPECT_EQ(script.calls[0], "prepare mk.reverse kb->ka");
  EXPECT_EQ(script.calls[2], "prepare mn.reverse nb->na");
  EXPECT_TRUE(run.report().contains("mk.reverse"));
  EXPECT_NE(run.report()["mk.reverse"]["id"].get<std::string>().rfind("-r"), std::string::npos);
}

TEST_F(MarkerRunTest, AMirrorWithoutAMarkerChannelIsUncheckedNotLost) {
  script.prepare["mk"] = Status::fatal("heartbeats are off");
  MarkerRun run(config, registry, mirrors(), false, "g", [](const std::string&) {});
  ASSERT_EQ(run.write(Duration(1000)), "");
  std::string error;
  EXPECT_EQ(run.check(Duration(1000), error), 0);
  EXPECT_EQ(run.report()["mk"]["unchecked"], "heartbeats are off");
  for (const auto& c : script.calls) EXPECT_NE(c.rfind("check mk", 0), 0u) << c;
}

TEST_F(MarkerRunTest, ABrokerErrorWhileWritingFailsTheRunNamingTheMirror) {
  script.prepare["mn"] = Status::retry("connection refused");
  MarkerRun run(config, registry, mirrors(), false, "g", [](const std::string&) {});
  const std::string e = run.write(Duration(1000));
  EXPECT_NE(e.find("mirror mn"), std::string::npos) << e;
  EXPECT_NE(e.find("connection refused"), std::string::npos) << e;
}

}  // namespace
}  // namespace mqdr::failover
