// Relay mode against the harness's NATS A (source) and B (target), the worker run in-process.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "mqdr/nats.hpp"
#include "nats/topology.hpp"
#include "tests/harness/child.hpp"
#include "nats/worker.hpp"
#include "nats_fixture.hpp"

namespace mqdr::nats::test {
namespace {

using namespace std::chrono_literals;

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a.open(cluster("nats-a", nats_a()));
    b.open(cluster("nats-b", nats_b()));
    state_dir = std::filesystem::temp_directory_path() / unique("mqdr-nats-test");
  }
  void TearDown() override {
    for (const auto& s : cleanup) {
      a.delete_stream(s);
      b.delete_stream(s);
    }
    std::error_code ec;
    std::filesystem::remove_all(state_dir, ec);
  }
  Side a, b;
  std::filesystem::path state_dir;
  std::vector<std::string> cleanup;
};

// Runs a worker on its own thread for the scope's lifetime.
struct RunningWorker {
  explicit RunningWorker(MirrorContext c) : ctx(std::move(c)), worker(ctx) {
    thread = std::jthread([this](std::stop_token st) { result = worker.run(st); });
  }
  ~RunningWorker() { stop(); }
  void stop() {
    if (thread.joinable()) {
      thread.request_stop();
      thread.join();
    }
  }
  MirrorContext ctx;
  MirrorWorker worker;
  Status result;
  std::jthread thread;
};

TEST_F(RelayTest, HundredThousandMessagesOverThreeStreamsArriveIdentical) {
  const std::string prefix = unique("RELAY");
  std::vector<std::string> streams;
  for (int i = 0; i < 3; ++i) {
    const std::string name = prefix + "_S" + std::to_string(i);
    streams.push_back(name);
    cleanup.push_back(name);
    const std::string base = "t." + name;
    a.add_stream(name, {base + ".>"});
  }
  const int per_stream[3] = {33334, 33333, 33333};
  for (int i = 0; i < 3; ++i) {
    const std::string base = "t." + streams[static_cast<std::size_t>(i)];
    a.publish({base + ".orders", base + ".payments.eu", base + ".payments.us"}, per_stream[i]);
  }

  RunningWorker w(mirror_context("relay100k", a.cfg, b.cfg, {prefix + "_S[0-9]"}, state_dir));
  for (int i = 0; i < 3; ++i) {
    const auto& s = streams[static_cast<std::size_t>(i)];
    ASSERT_TRUE(wait_until([&] { return b.count(s) >= static_cast<std::uint64_t>(per_stream[i]); }, 120s))
        << s << " has " << b.count(s);
  }
  // Lag settles to zero once the source acks are in.
  ASSERT_TRUE(wait_until([&] { return w.ctx.stats->snapshot().lag_records == 0; }, 30s))
      << w.ctx.stats->snapshot().lag_records;
  w.stop();
  EXPECT_TRUE(w.result.is_ok()) << w.result.message();
  auto snap = w.ctx.stats->snapshot();
  EXPECT_EQ(snap.records_total, 100000u);
  EXPECT_GT(snap.bytes_total, 0u);
  EXPECT_EQ(snap.detail["mode"], "relay");
  EXPECT_EQ(snap.detail["streams"].size(), 3u);

  for (const auto& s : streams) {
    auto src = a.read_all(s);
    auto dst = b.read_all(s);
    ASSERT_EQ(src.size(), dst.size()) << s;
    for (std::size_t i = 0; i < src.size(); ++i) {
      expect_same(src[i], dst[i], false);
      std::vector<Header> th;
      ASSERT_TRUE(parse_header_block(dst[i].header_block, th));
      EXPECT_EQ(last_header_value(dst[i].header_block, kSourceSeqHeader), std::to_string(src[i].seq));
      EXPECT_EQ(last_header_value(dst[i].header_block, kSourceTimeHeader), std::to_string(src[i].time_ns));
      EXPECT_EQ(last_header_value(dst[i].header_block, kMsgIdHeader), s + ":" + std::to_string(src[i].seq));
      if (HasFatalFailure()) return;
    }
  }
}

TEST_F(RelayTest, StreamCreatedWhileRunningIsReplicatedWithItsConfig) {
  const std::string prefix = unique("PICKUP");
  const std::string first = prefix + "_ONE";
  const std::string later = prefix + "_TWO";
  cleanup = {first, later};
  a.add_stream(first, {"p." + first});
  RunningWorker w(mirror_context("pickup", a.cfg, b.cfg, {prefix + "_.*"}, state_dir));
  ASSERT_TRUE(wait_until([&] { return b.exists(first); }, 30s));

  // The seed's example: a file-storage backup stream with 7 days max age, plus other limits.
  a.add_stream(later, {"p." + later + ".*"}, [](jsStreamConfig& c) {
    c.MaxAge = 7LL * 24 * 3600 * 1000000000LL;
    c.MaxBytes = 512LL << 20;
    c.MaxMsgs = 1000000;
    c.MaxMsgSize = 65536;
    c.Discard = js_DiscardNew;
    c.Duplicates = 5LL * 60 * 1000000000LL;
    c.Retention = js_InterestPolicy;
  });
  // Interest retention keeps messages only for consumers: give it one.
  {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "app";
    cc.AckPolicy = js_AckExplicit;
    jsConsumerInfo* ci = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    ASSERT_EQ(js_AddConsumer(&ci, a.js.get(), later.c_str(), &cc, nullptr, &code), NATS_OK);
    jsConsumerInfo_Destroy(ci);
  }
  a.publish({"p." + later + ".x", "p." + later + ".y"}, 500);
  ASSERT_TRUE(wait_until([&] { return b.count(later) == 500; }, 60s)) << b.count(later);

  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  ASSERT_EQ(js_GetStreamInfo(&si, b.js.get(), later.c_str(), nullptr, &code), NATS_OK);
  Ptr<jsStreamInfo> info(si);
  const jsStreamConfig& c = *info->Config;
  ASSERT_EQ(c.SubjectsLen, 1);
  EXPECT_EQ(std::string(c.Subjects[0]), "p." + later + ".*");
  EXPECT_EQ(c.Storage, js_FileStorage);
  EXPECT_EQ(c.MaxAge, 7LL * 24 * 3600 * 1000000000LL);
  // Raised by what the relay adds to each message, so that the target holds what the source holds.
  EXPECT_GT(c.MaxBytes, 512LL << 20);
  EXPECT_LE(c.MaxBytes, (512LL << 20) + 1000000LL * relay_overhead_bytes(later));
  EXPECT_EQ(c.MaxMsgs, 1000000);
  EXPECT_EQ(c.MaxMsgSize, 65536 + relay_overhead_bytes(later));
  EXPECT_EQ(c.Discard, js_DiscardNew);
  EXPECT_EQ(c.Duplicates, 5LL * 60 * 1000000000LL);
  EXPECT_EQ(c.Retention, js_InterestPolicy);
  EXPECT_EQ(c.Replicas, 1);

  auto src = a.read_all(later);
  auto dst = b.read_all(later);
  ASSERT_EQ(src.size(), dst.size());
  for (std::size_t i = 0; i < src.size(); ++i) expect_same(src[i], dst[i], false);
}

TEST_F(RelayTest, DurableConsumerTwinDeliversTheRest) {
  const std::string stream = unique("TWIN");
  cleanup = {stream};
  a.add_stream(stream, {"w." + stream});
  a.publish({"w." + stream}, 1000);
  // A client's durable on the source acks the first half.
  {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "billing";
    cc.AckPolicy = js_AckExplicit;
    jsConsumerInfo* ci = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    ASSERT_EQ(js_AddConsumer(&ci, a.js.get(), stream.c_str(), &cc, nullptr, &code), NATS_OK);
    jsConsumerInfo_Destroy(ci);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Consumer = "billing";
    natsSubscription* sub = nullptr;
    ASSERT_EQ(js_PullSubscribe(&sub, a.js.get(), nullptr, nullptr, nullptr, &so, &code), NATS_OK);
    int acked = 0;
    while (acked < 500) {
      natsMsgList list{nullptr, 0};
      ASSERT_EQ(natsSubscription_Fetch(&list, sub, std::min(100, 500 - acked), 5000, &code), NATS_OK);
      for (int i = 0; i < list.Count; ++i) ASSERT_EQ(natsMsg_AckSync(list.Msgs[i], nullptr, &code), NATS_OK);
      acked += list.Count;
      natsMsgList_Destroy(&list);
    }
    natsSubscription_Destroy(sub);
  }
  auto ctx = mirror_context("twin", a.cfg, b.cfg, {stream}, state_dir);
  ctx.mirror.nats.consumers = {"bill.*"};
  RunningWorker w(ctx);
  ASSERT_TRUE(wait_until([&] { return b.count(stream) == 1000; }, 60s));
  // The twin appears at the translated floor.
  ASSERT_TRUE(wait_until([&] {
    jsConsumerInfo* ci = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    if (js_GetConsumerInfo(&ci, b.js.get(), stream.c_str(), "billing", nullptr, &code) != NATS_OK) return false;
    bool ok = ci->NumPending == 500;
    jsConsumerInfo_Destroy(ci);
    return ok;
  }, 30s));
  w.stop();
  // A client binding to the same durable on the target gets exactly the second half.
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Consumer = "billing";
  natsSubscription* sub = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  ASSERT_EQ(js_PullSubscribe(&sub, b.js.get(), nullptr, nullptr, nullptr, &so, &code), NATS_OK);
  std::vector<std::string> got;
  for (;;) {
    natsMsgList list{nullptr, 0};
    natsStatus s = natsSubscription_Fetch(&list, sub, 100, 1000, &code);
    if (s != NATS_OK) break;
    for (int i = 0; i < list.Count; ++i) {
      const char* idx = nullptr;
      ASSERT_EQ(natsMsgHeader_Get(list.Msgs[i], "X-Index", &idx), NATS_OK);
      got.emplace_back(idx);
      natsMsg_Ack(list.Msgs[i], nullptr);
    }
    natsMsgList_Destroy(&list);
  }
  natsSubscription_Destroy(sub);
  ASSERT_EQ(got.size(), 500u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], std::to_string(500 + i));
}

TEST_F(RelayTest, BadInputIsReportedWithoutLosingAnything) {
  const std::string prefix = unique("BAD");
  const std::string missing = prefix + "_MISSING";
  const std::string wq = prefix + "_WQ";
  const std::string full = prefix + "_FULL";
  cleanup = {wq, full};
  a.add_stream(wq, {"bad." + wq}, [](jsStreamConfig& c) { c.Retention = js_WorkQueuePolicy; });
  // Same limits on both sides (synced); the target is full of someone else's messages.
  a.add_stream(full, {"bad." + full}, [](jsStreamConfig& c) {
    c.MaxMsgs = 300;
    c.MaxBytes = 1 << 20;
    c.Discard = js_DiscardNew;
  });
  RunningWorker w(mirror_context("bad", a.cfg, b.cfg, {missing, wq, full}, state_dir));
  ASSERT_TRUE(wait_until([&] { return b.exists(full); }, 30s));
  // Someone else fills the target stream until it refuses (discard new).
  {
    std::string big(40, 'f');
    for (int i = 0; i < 100000; ++i) {
      jsPubAck* pa = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      natsStatus s = js_Publish(&pa, b.js.get(), ("bad." + full).c_str(), big.data(),
                                static_cast<int>(big.size()), nullptr, &code);
      jsPubAck_Destroy(pa);
      if (s != NATS_OK) break;
    }
  }
  a.publish({"bad." + full}, 100);
  ASSERT_TRUE(wait_until([&] {
    auto d = w.ctx.stats->snapshot().detail;
    if (!d.contains("streams")) return false;
    auto& s = d["streams"];
    return s.contains(missing) && s.contains(wq) && s.contains(full) &&
           s[missing]["last_error"].get<std::string>().find("does not exist") != std::string::npos &&
           s[wq]["last_error"].get<std::string>().find("native") != std::string::npos &&
           s[full]["last_error"].get<std::string>().find("target stream") != std::string::npos;
  }, 30s)) << w.ctx.stats->snapshot().detail.dump();
  EXPECT_FALSE(w.ctx.stats->snapshot().last_error.empty());
  EXPECT_EQ(w.ctx.stats->snapshot().state, "running");
  // Nothing was acked on the source while the target refused: lag is all 100.
  ASSERT_TRUE(wait_until([&] { return w.ctx.stats->snapshot().detail["streams"][full]["lag_records"] == 100; }, 10s));
  // No busy loop: the errors counted stay small while the target refuses for two seconds.
  const auto errors_before = w.ctx.stats->snapshot().errors_total;
  std::this_thread::sleep_for(2s);  // observation window, not synchronization
  EXPECT_LT(w.ctx.stats->snapshot().errors_total - errors_before, 20u);
  // Room again on the target (the foreign messages are removed): everything arrives.
  ASSERT_EQ(js_PurgeStream(b.js.get(), full.c_str(), nullptr, nullptr), NATS_OK);
  ASSERT_TRUE(wait_until([&] { return b.count(full) == 100; }, 60s)) << b.count(full);
  auto src = a.read_all(full);
  auto dst = b.read_all(full);
  ASSERT_EQ(src.size(), dst.size());
  for (std::size_t i = 0; i < src.size(); ++i) expect_same(src[i], dst[i], false);
}

// A source server without JetStream: the worker says so (status and log), retries with backoff
// instead of spinning, and the target is left alone.
TEST_F(RelayTest, SourceWithoutJetStreamIsReportedWithoutBusyLoop) {
  // A nats-server of the test's own, JetStream off, on a free loopback port.
  int port = 0;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    ::close(fd);
  }
  const pid_t parent = getpid();
  pid_t server = fork();
  if (server == 0) {
    mqdr::test::die_with_parent(parent);
    int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) {
      dup2(null, 1);
      dup2(null, 2);
    }
    const std::string p = std::to_string(port);
    execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", p.c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(server, 0);
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{server};
  const std::string url = "nats://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(wait_until(
      [&] {
        Connection c;
        return c.connect(cluster("plain", url), "probe", Duration(500)).is_ok();
      },
      20s));

  const std::string stream = unique("NOJS");
  RunningWorker w(mirror_context("nojs", cluster("plain", url), b.cfg, {stream}, state_dir));
  std::string error;
  ASSERT_TRUE(wait_until(
      [&] {
        error = w.ctx.stats->snapshot().last_error;
        return error.find("JetStream") != std::string::npos;
      },
      30s))
      << w.ctx.stats->snapshot().state << " " << error << " "
      << w.ctx.stats->snapshot().detail.dump();
  EXPECT_NE(error.find("plain"), std::string::npos) << error;  // names the cluster
  // No busy loop: few new errors in a two-second window.
  const auto errors_before = w.ctx.stats->snapshot().errors_total;
  std::this_thread::sleep_for(2s);  // observation window, not synchronization
  EXPECT_LT(w.ctx.stats->snapshot().errors_total - errors_before, 20u);
  EXPECT_FALSE(b.exists(stream));  // nothing was made up on the target
}

// A relay stopped and started again at once, while messages arrive one at a time (the way a
// drill's markers do, after the failback restarts the forward relay): every message arrives, in
// order. The stopped relay's long-poll pull requests may still be waiting on the durable; a
// message the server hands to one of them must not be skipped by the new relay.
TEST_F(RelayTest, RestartedRelayPassesOnEveryMessageOfATrickle) {
  const std::string stream = unique("TRICKLE");
  cleanup = {stream};
  a.add_stream(stream, {"t." + stream});
  const auto ctx = mirror_context("trickle", a.cfg, b.cfg, {stream}, state_dir);
  int published = 0;
  for (int round = 0; round < 3; ++round) {
    {
      RunningWorker w(ctx);
      a.publish({"t." + stream}, 10, published);
      published += 10;
      ASSERT_TRUE(wait_until([&] { return b.count(stream) == static_cast<std::uint64_t>(published); }, 30s))
          << "round " << round << ": " << b.count(stream);
    }
    RunningWorker w(ctx);
    for (int i = 0; i < 40; ++i) {
      a.publish({"t." + stream}, 1, published++);
      std::this_thread::sleep_for(20ms);  // a trickle, not a batch
    }
    ASSERT_TRUE(wait_until([&] { return b.count(stream) == static_cast<std::uint64_t>(published); }, 20s))
        << "round " << round << ": target holds " << b.count(stream) << " of " << published << "; "
        << w.ctx.stats->snapshot().last_error;
  }
  auto src = a.read_all(stream);
  auto dst = b.read_all(stream);
  ASSERT_EQ(src.size(), dst.size());
  for (std::size_t i = 0; i < src.size(); ++i) expect_same(src[i], dst[i], false);
}

// Another reader takes deliveries from the relay's durable consumer (a second mqdr running the
// same mirror, or a pull request left waiting by a stopped relay) and never acks them. The relay
// sees the gap in the consumer's delivery sequence, says so, and reads again from what the target
// holds: every message arrives, in order. Without the check, the relay's AckAll acks would cover
// the stolen messages and they would never reach the target.
TEST_F(RelayTest, DeliveriesTakenByAnotherReaderAreReadAgain) {
  const std::string stream = unique("THIEF");
  cleanup = {stream};
  a.add_stream(stream, {"t." + stream});
  const auto ctx = mirror_context("thief", a.cfg, b.cfg, {stream}, state_dir);
  RunningWorker w(ctx);
  a.publish({"t." + stream}, 10);
  ASSERT_TRUE(wait_until([&] { return b.count(stream) == 10; }, 30s)) << b.count(stream);

  // Two pull requests of 3 on the relay's durable, from a connection of the test's own.
  Puller thief;
  ASSERT_TRUE(thief.open(a.conn.get(), a.cfg, stream, consumer_name_for("thief"), 3).is_ok());
  int stolen = 0;
  ASSERT_TRUE(thief.next(0, Duration(0), [&](natsMsg*) { ++stolen; }).is_ok());  // sends the requests
  for (int i = 0; i < 60; ++i) {
    a.publish({"t." + stream}, 1, 10 + i);
    std::this_thread::sleep_for(10ms);
    // Fails once the relay recreates its consumer (409 Consumer Deleted): the thief is done.
    (void)thief.next(6, Duration(0), [&](natsMsg*) { ++stolen; });
  }
  (void)thief.next(6, Duration(500), [&](natsMsg*) { ++stolen; });
  thief.close();
  std::cerr << "the other reader took " << stolen << " deliveries\n";
  EXPECT_GT(stolen, 0) << "the test's reader took nothing: the case is not exercised";
  ASSERT_TRUE(wait_until([&] { return b.count(stream) == 70; }, 60s))
      << "target holds " << b.count(stream) << " of 70; " << w.ctx.stats->snapshot().last_error;
  auto src = a.read_all(stream);
  auto dst = b.read_all(stream);
  ASSERT_EQ(src.size(), dst.size());
  for (std::size_t i = 0; i < src.size(); ++i) expect_same(src[i], dst[i], false);
}

// Verify compares what both sides hold: copies on the target of messages the source's limits
// have discarded since are counted apart, not reported as differences; a message copied to the
// target a second time is named a duplicate.
TEST_F(RelayTest, VerifySkipsWhatTheSourceDiscardedAndNamesADuplicate) {
  const std::string stream = unique("VERIFY");
  cleanup = {stream};
  a.add_stream(stream, {"v." + stream});
  auto ctx = mirror_context("verify", a.cfg, b.cfg, {stream}, state_dir);
  ctx.mirror.nats.refresh_interval = Duration(3600000);  // the test changes the source's limits
  {
    RunningWorker w(ctx);
    a.publish({"v." + stream}, 100);
    ASSERT_TRUE(wait_until([&] { return b.count(stream) == 100; }, 30s)) << b.count(stream);
  }
  // The source keeps only its newest 40 from now on; the target still holds all 100.
  {
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    ASSERT_EQ(js_GetStreamInfo(&si, a.js.get(), stream.c_str(), nullptr, &code), NATS_OK);
    Ptr<jsStreamInfo> info(si);
    jsStreamConfig cfg = *info->Config;
    cfg.MaxMsgs = 40;
    jsStreamInfo* updated = nullptr;
    ASSERT_EQ(js_UpdateStream(&updated, a.js.get(), &cfg, nullptr, &code), NATS_OK) << code;
    jsStreamInfo_Destroy(updated);
  }
  ASSERT_EQ(a.count(stream), 40u);
  BrokerRegistry registry;
  register_kind(registry);
  auto ops = registry.find(ClusterKind::nats)->make_mirror_ops(ctx);
  VerifyResult v = ops->verify(Duration(60000));
  EXPECT_TRUE(v.equal) << v.first_difference;
  EXPECT_TRUE(v.unchecked.empty());
  EXPECT_EQ(v.detail[stream]["compared"], 40) << v.detail.dump();
  EXPECT_EQ(v.detail[stream]["discarded_on_source"], 60) << v.detail.dump();

  // A copy of source message 100 published on the target again, as a relay that lost its place
  // would: verify names it.
  {
    auto dst = b.read_all(stream);
    ASSERT_EQ(dst.size(), 100u);
    const auto& last = dst.back();
    Ptr<natsMsg> msg;
    ASSERT_TRUE(make_raw_message(last.subject, last.header_block, last.payload, msg).is_ok());
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 10000;
    jsPubAck* pa = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    // Nats-Msg-Id would make the target drop it: a duplicate window long past, in effect.
    ASSERT_EQ(natsMsgHeader_Delete(msg.get(), "Nats-Msg-Id"), NATS_OK);
    (void)natsMsgHeader_Delete(msg.get(), "Nats-Expected-Last-Msg-Id");
    ASSERT_EQ(js_PublishMsg(&pa, b.js.get(), msg.get(), &po, &code), NATS_OK) << code;
    jsPubAck_Destroy(pa);
  }
  v = ops->verify(Duration(60000));
  EXPECT_FALSE(v.equal);
  EXPECT_NE(v.first_difference.find("again (a duplicate"), std::string::npos) << v.first_difference;
}

}  // namespace
}  // namespace mqdr::nats::test
