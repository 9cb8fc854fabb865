// NATS JetStream backups against the harness: a stream of nats-a with a durable consumer, full +
// incremental backup, restored into nats-b (messages, original headers and times, stream config,
// the consumer positioned after its ack floor); a flipped segment byte named by verify; kill -9
// during a restore, then a rerun: every message exactly once.
#include <gtest/gtest.h>

#include "backup/manifest.hpp"
#include "tests/integration/backup/backup_fixture.hpp"
#include "tests/integration/nats/nats_fixture.hpp"

namespace mqdr::backup::test {
namespace {

using nats::test::Side;

class NatsBackup : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& ep = mqdr::test::Endpoints::get();
    MQDR_REQUIRE_BROKER(ep.nats_a);
    MQDR_REQUIRE_BROKER(ep.nats_b);
    a_url_ = ep.nats_a;
    b_url_ = ep.nats_b;
    a_.open(nats::test::cluster("na", a_url_));
    b_.open(nats::test::cluster("nb", b_url_));
  }
  void TearDown() override {
    for (const auto& s : streams_) {
      a_.delete_stream(s);
      b_.delete_stream(s);
    }
  }
  void config(Scratch& s, const std::string& plan, const std::string& stream) {
    s.write_config("  na: { kind: nats, servers: ['" + a_url_ + "'] }\n"
                   "  nb: { kind: nats, servers: ['" + b_url_ + "'] }\n",
                   "  - name: " + plan + "\n    cluster: na\n    streams: ['" + stream + "']\n    dir: " +
                       s.backups().string() + "\n");
  }
  // Acks the first `n` messages of `stream` through durable pull consumer `durable`.
  void consume_and_ack(const std::string& stream, const std::string& durable, int n) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.MaxAckPending = 100000;
    jsConsumerInfo* ci = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    ASSERT_EQ(js_AddConsumer(&ci, a_.js.get(), stream.c_str(), &cc, nullptr, &code), NATS_OK);
    jsConsumerInfo_Destroy(ci);
    natsSubscription* sub = nullptr;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Consumer = durable.c_str();
    ASSERT_EQ(js_PullSubscribe(&sub, a_.js.get(), nullptr, durable.c_str(), nullptr, &so, &code), NATS_OK);
    natsMsgList list{};
    ASSERT_EQ(natsSubscription_Fetch(&list, sub, n, 10000, &code), NATS_OK);
    ASSERT_EQ(list.Count, n);
    for (int i = 0; i < list.Count; ++i) ASSERT_EQ(natsMsg_AckSync(list.Msgs[i], nullptr, &code), NATS_OK);
    natsMsgList_Destroy(&list);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    ASSERT_TRUE(nats::test::wait_until([&] {
      jsConsumerInfo* info = nullptr;
      if (js_GetConsumerInfo(&info, a_.js.get(), stream.c_str(), durable.c_str(), nullptr, &code) != NATS_OK) return false;
      const bool done = info->AckFloor.Stream == static_cast<std::uint64_t>(n);
      jsConsumerInfo_Destroy(info);
      return done;
    }, 10s));
  }
  void expect_same_streams(const std::string& stream) {
    const auto src = a_.read_all(stream);
    const auto dst = b_.read_all(stream);
    ASSERT_EQ(src.size(), dst.size());
    for (std::size_t i = 0; i < src.size(); ++i) {
      nats::test::expect_same(src[i], dst[i], false);
      auto t = nats::last_header_value(dst[i].header_block, nats::kSourceTimeHeader);
      ASSERT_TRUE(t.has_value());
      ASSERT_EQ(*t, std::to_string(src[i].time_ns)) << "original time kept, seq " << src[i].seq;
    }
  }
  std::string a_url_, b_url_;
  Side a_, b_;
  std::vector<std::string> streams_;
};

TEST_F(NatsBackup, FullAndIncrementalRestoredIntoTheOtherClusterAreIdentical) {
  Scratch s("nbk");
  const std::string stream = nats::test::unique("BKORDERS");
  streams_.push_back(stream);
  const std::vector<std::string> subjects = {stream + ".created", stream + ".paid"};
  a_.add_stream(stream, {stream + ".>"}, [](jsStreamConfig& c) { c.MaxAge = 3600LL * 1000000000LL; });
  a_.publish(subjects, 300);
  consume_and_ack(stream, "worker", 120);
  config(s, "nplan", stream);

  RunResult full = s.mqdr({"backup", "-c", s.config().string(), "--plan", "nplan"});
  ASSERT_EQ(full.rc, 0) << full.out;
  a_.publish(subjects, 200, 300);
  RunResult inc = s.mqdr({"backup", "-c", s.config().string(), "--plan", "nplan"});
  ASSERT_EQ(inc.rc, 0) << inc.out;
  const auto names = s.backup_names("nplan");
  ASSERT_EQ(names.size(), 2u);
  const Manifest m1 = read_manifest(s.backups() / "nplan" / names[1]);
  EXPECT_FALSE(m1.full);
  EXPECT_EQ(m1.parent, names[0]);
  EXPECT_EQ(m1.records, 200u);
  EXPECT_EQ(m1.items.at(0).partitions.at(0).first, 301);

  RunResult r = s.mqdr({"restore", "-c", s.config().string(), "--from", (s.backups() / "nplan" / names[1]).string(),
                        "--to", "nb"});
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(b_.count(stream), 500u);
  expect_same_streams(stream);

  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  ASSERT_EQ(js_GetStreamInfo(&si, b_.js.get(), stream.c_str(), nullptr, &code), NATS_OK);
  EXPECT_EQ(si->Config->MaxAge, 3600LL * 1000000000LL);
  ASSERT_EQ(si->Config->SubjectsLen, 1);
  EXPECT_EQ(std::string(si->Config->Subjects[0]), stream + ".>");
  jsStreamInfo_Destroy(si);
  jsConsumerInfo* ci = nullptr;
  ASSERT_EQ(js_GetConsumerInfo(&ci, b_.js.get(), stream.c_str(), "worker", nullptr, &code), NATS_OK);
  EXPECT_EQ(ci->Config->DeliverPolicy, js_DeliverByStartSequence);
  EXPECT_EQ(ci->Config->OptStartSeq, 121u) << "the consumer continues after its ack floor";
  EXPECT_EQ(ci->NumPending, 380u);
  jsConsumerInfo_Destroy(ci);
}

TEST_F(NatsBackup, FlippedSegmentByteIsNamed) {
  Scratch s("nbk");
  const std::string stream = nats::test::unique("BKFLIP");
  streams_.push_back(stream);
  a_.add_stream(stream, {stream + ".>"});
  a_.publish({stream + ".x"}, 1000);
  config(s, "nf", stream);
  ASSERT_EQ(s.mqdr({"backup", "-c", s.config().string(), "--plan", "nf"}).rc, 0);
  const fs::path bk = s.backups() / "nf" / s.backup_names("nf").at(0);
  const fs::path seg = segment_files(bk).at(0);
  flip_byte(seg, fs::file_size(seg) / 3);
  RunResult v = s.mqdr({"verify", "--backup", bk.string()});
  EXPECT_EQ(v.rc, 3) << v.out;
  EXPECT_NE(v.out.find(seg.string() + ": item '" + stream + "' partition 0"), std::string::npos) << v.out;
}

TEST_F(NatsBackup, Kill9DuringRestoreThenRerunHasEveryMessageOnce) {
  Scratch s("nbk");
  const std::string stream = nats::test::unique("BKKILL");
  streams_.push_back(stream);
  a_.add_stream(stream, {stream + ".>"});
  constexpr int kMessages = 60000;
  a_.publish({stream + ".a", stream + ".b"}, kMessages);
  config(s, "nk", stream);
  ASSERT_EQ(s.mqdr({"backup", "-c", s.config().string(), "--plan", "nk"}).rc, 0);
  const fs::path bk = s.backups() / "nk" / s.backup_names("nk").at(0);
  {
    Child c({"restore", "-c", s.config().string(), "--from", bk.string(), "--to", "nb"}, s.dir() / "killed.log");
    ASSERT_TRUE(wait_for([&] { return !c.running() || b_.count(stream) > 0; }, 120s)) << c.output();
    ASSERT_TRUE(c.running()) << "the restore ended before it could be killed: " << c.output();
    c.kill9();
  }
  ASSERT_LT(b_.count(stream), static_cast<std::uint64_t>(kMessages));
  RunResult again = s.mqdr({"restore", "-c", s.config().string(), "--from", bk.string(), "--to", "nb"});
  ASSERT_EQ(again.rc, 0) << again.out;
  EXPECT_EQ(b_.count(stream), static_cast<std::uint64_t>(kMessages));
  expect_same_streams(stream);
}

}  // namespace
}  // namespace mqdr::backup::test
