// Native mode against the harness's leafnode-linked pair: hub (domain hub, source) and leaf
// (domain leaf, target). The target streams source from the hub's through $JS.hub.API.

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "mqdr/nats.hpp"
#include "nats/worker.hpp"
#include "nats_fixture.hpp"

namespace mqdr::nats::test {
namespace {

using namespace std::chrono_literals;

class NativeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hub.open(cluster("nats-hub", nats_hub(), "hub"));
    leaf.open(cluster("nats-leaf", nats_leaf(), "leaf"));
    state_dir = std::filesystem::temp_directory_path() / unique("mqdr-nats-native");
  }
  void TearDown() override {
    for (const auto& s : cleanup) {
      leaf.delete_stream(s);
      hub.delete_stream(s);
    }
    std::error_code ec;
    std::filesystem::remove_all(state_dir, ec);
  }
  Side hub, leaf;
  std::filesystem::path state_dir;
  std::vector<std::string> cleanup;
};

TEST_F(NativeTest, HundredThousandMessagesOverThreeStreamsThenPromote) {
  const std::string prefix = unique("NATIVE");
  std::vector<std::string> streams;
  for (int i = 0; i < 3; ++i) {
    const std::string name = prefix + "_S" + std::to_string(i);
    streams.push_back(name);
    cleanup.push_back(name);
    hub.add_stream(name, {"n." + name + ".>"}, [](jsStreamConfig& c) { c.MaxAge = 3600LL * 1000000000LL; });
  }
  const int per_stream[3] = {33334, 33333, 33333};
  for (int i = 0; i < 3; ++i) {
    const std::string base = "n." + streams[static_cast<std::size_t>(i)];
    hub.publish({base + ".orders", base + ".payments.eu", base + ".payments.us"}, per_stream[i]);
  }
  auto ctx = mirror_context("native100k", hub.cfg, leaf.cfg, {prefix + "_S[0-9]"}, state_dir, NatsMode::native);
  {
    MirrorWorker worker(ctx);
    std::jthread t([&](std::stop_token st) { (void)worker.run(st); });
    for (int i = 0; i < 3; ++i) {
      const auto& s = streams[static_cast<std::size_t>(i)];
      ASSERT_TRUE(wait_until([&] { return leaf.count(s) >= static_cast<std::uint64_t>(per_stream[i]); }, 180s))
          << s << " has " << leaf.count(s);
    }
    ASSERT_TRUE(wait_until([&] { return ctx.stats->snapshot().lag_records == 0; }, 30s))
        << ctx.stats->snapshot().detail.dump();
    EXPECT_EQ(ctx.stats->snapshot().detail["mode"], "native");
  }
  for (const auto& s : streams) {
    auto src = hub.read_all(s);
    auto dst = leaf.read_all(s);
    ASSERT_EQ(src.size(), dst.size()) << s;
    for (std::size_t i = 0; i < src.size(); ++i) {
      expect_same(src[i], dst[i], true);
      if (HasFatalFailure()) return;
    }
    // While mirroring, the target listens on no subjects (the leafnode link would otherwise
    // bring the primary's publishes in twice) and keeps the source's limits.
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    ASSERT_EQ(js_GetStreamInfo(&si, leaf.js.get(), s.c_str(), nullptr, &code), NATS_OK);
    Ptr<jsStreamInfo> info(si);
    EXPECT_EQ(info->Config->SubjectsLen, 0);
    ASSERT_EQ(info->Config->SourcesLen, 1);
    EXPECT_EQ(info->Config->MaxAge, 3600LL * 1000000000LL);
  }

  // Failover operations: lag, verify, promote.
  BrokerRegistry registry;
  register_kind(registry);
  auto ops = registry.find(ClusterKind::nats)->make_mirror_ops(ctx);
  Lag lag = ops->lag(Duration(5000));
  EXPECT_EQ(lag.records, 0);
  VerifyResult v = ops->verify(Duration(120000));
  EXPECT_TRUE(v.equal) << v.first_difference;
  EXPECT_TRUE(v.unchecked.empty());
  EXPECT_EQ(v.detail[streams[0]]["compared"], 33334);
  Status promoted = ops->promote(Duration(10000));
  ASSERT_TRUE(promoted.is_ok()) << promoted.message();
  for (const auto& s : streams) {
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    ASSERT_EQ(js_GetStreamInfo(&si, leaf.js.get(), s.c_str(), nullptr, &code), NATS_OK);
    Ptr<jsStreamInfo> info(si);
    EXPECT_EQ(info->Config->SourcesLen, 0) << s;
    ASSERT_EQ(info->Config->SubjectsLen, 1) << s;
    EXPECT_EQ(std::string(info->Config->Subjects[0]), "n." + s + ".>");
  }
  // The promoted stream takes local publishes.
  jsPubAck* pa = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const std::string subj = "n." + streams[0] + ".orders";
  ASSERT_EQ(js_Publish(&pa, leaf.js.get(), subj.c_str(), "after", 5, nullptr, &code), NATS_OK) << error_text(NATS_ERR, code);
  EXPECT_EQ(std::string(pa->Stream), streams[0]);
  jsPubAck_Destroy(pa);
}

}  // namespace
}  // namespace mqdr::nats::test
