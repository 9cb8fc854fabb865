#pragma once
// Shared helpers of the NATS integration tests: endpoints from the harness environment, unique
// names, publishing test messages with headers, reading a stream back and bounded waits.

#include <gtest/gtest.h>
#include <nats/nats.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "mqdr/broker.hpp"
#include "mqdr/config.hpp"
#include "nats/client.hpp"
#include "nats/reader.hpp"

namespace mqdr::nats::test {

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}
inline std::string nats_a() { return env_or("MQDR_NATS_A", "nats://127.0.0.1:14222"); }
inline std::string nats_b() { return env_or("MQDR_NATS_B", "nats://127.0.0.1:24222"); }
inline std::string nats_hub() { return env_or("MQDR_NATS_HUB", "nats://127.0.0.1:34222"); }
inline std::string nats_leaf() { return env_or("MQDR_NATS_LEAF", "nats://127.0.0.1:44222"); }

inline std::string unique(const std::string& prefix) {
  static std::mt19937_64 rng(std::random_device{}());
  return prefix + "_" + std::to_string(rng() % 100000000);
}

inline ClusterConfig cluster(const std::string& name, const std::string& url, const std::string& domain = "") {
  ClusterConfig c;
  c.name = name;
  c.kind = ClusterKind::nats;
  c.nats.servers = {url};
  c.nats.domain = domain;
  return c;
}

// Polls `done` every 50 ms until it returns true or `limit` passes.
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

struct Side {
  Connection conn;
  Ptr<jsCtx> js;
  ClusterConfig cfg;
  void open(const ClusterConfig& c) {
    cfg = c;
    Status st = conn.connect(c, "mqdr-test", Duration(5000));
    ASSERT_TRUE(st.is_ok()) << st.message();
    st = conn.jetstream(c, Duration(10000), js);
    ASSERT_TRUE(st.is_ok()) << st.message();
  }
  void add_stream(const std::string& name, const std::vector<std::string>& subjects,
                  const std::function<void(jsStreamConfig&)>& tweak = {}) {
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = name.c_str();
    std::vector<const char*> subs;
    for (const auto& s : subjects) subs.push_back(s.c_str());
    sc.Subjects = subs.data();
    sc.SubjectsLen = static_cast<int>(subs.size());
    sc.Storage = js_FileStorage;
    if (tweak) tweak(sc);
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_AddStream(&si, js.get(), &sc, nullptr, &code);
    ASSERT_EQ(s, NATS_OK) << error_text(s, code);
    jsStreamInfo_Destroy(si);
  }
  void delete_stream(const std::string& name) {
    jsErrCode code = static_cast<jsErrCode>(0);
    (void)js_DeleteStream(js.get(), name.c_str(), nullptr, &code);
  }
  std::uint64_t count(const std::string& stream) {
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, js.get(), stream.c_str(), nullptr, &code) != NATS_OK) return 0;
    std::uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
  }
  bool exists(const std::string& stream) {
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, js.get(), stream.c_str(), nullptr, &code) != NATS_OK) return false;
    jsStreamInfo_Destroy(si);
    return true;
  }
  // Publishes `n` messages round-robin over `subjects`, each with two headers (one repeated key)
  // and a payload naming its index; waits for every PubAck.
  void publish(const std::vector<std::string>& subjects, int n, int offset = 0) {
    for (int i = 0; i < n; ++i) {
      const std::string& subj = subjects[static_cast<std::size_t>(i) % subjects.size()];
      natsMsg* m = nullptr;
      std::string payload = "payload-" + std::to_string(offset + i) + "-" + std::string(static_cast<std::size_t>(i % 17), 'x');
      ASSERT_EQ(natsMsg_Create(&m, subj.c_str(), nullptr, payload.data(), static_cast<int>(payload.size())), NATS_OK);
      natsMsgHeader_Set(m, "X-Index", std::to_string(offset + i).c_str());
      natsMsgHeader_Add(m, "X-Tag", "a");
      natsMsgHeader_Add(m, "X-Tag", "b");
      natsStatus s = js_PublishMsgAsync(js.get(), &m, nullptr);
      natsMsg_Destroy(m);
      ASSERT_EQ(s, NATS_OK) << error_text(s);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    ASSERT_EQ(js_PublishAsyncComplete(js.get(), &po), NATS_OK);
  }
  std::vector<StoredMessage> read_all(const std::string& stream) {
    std::vector<StoredMessage> out;
    StreamReader reader(conn.get(), cfg, js.get(), stream);
    Status st = reader.open(1);
    EXPECT_TRUE(st.is_ok()) << st.message();
    if (!st.is_ok()) return out;
    for (;;) {
      std::size_t before = out.size();
      st = reader.next(out, 1000, Duration(500));
      EXPECT_TRUE(st.is_ok()) << st.message();
      if (!st.is_ok() || out.size() == before) break;
    }
    return out;
  }
};

inline MirrorContext mirror_context(const std::string& name, const ClusterConfig& src,
                                    const ClusterConfig& dst, std::vector<std::string> streams,
                                    const std::filesystem::path& state_dir,
                                    NatsMode mode = NatsMode::relay) {
  MirrorContext ctx;
  ctx.mirror.name = name;
  ctx.mirror.source = src.name;
  ctx.mirror.target = dst.name;
  ctx.mirror.kind = ClusterKind::nats;
  ctx.mirror.nats.streams = std::move(streams);
  ctx.mirror.nats.mode = mode;
  ctx.mirror.nats.refresh_interval = Duration(1000);
  ctx.mirror.nats.consumer_sync_interval = Duration(1000);
  ctx.source = src;
  ctx.target = dst;
  ctx.stats = std::make_shared<WorkerStats>(name, "nats");
  ctx.state_dir = state_dir;
  std::filesystem::create_directories(state_dir);
  return ctx;
}

// Source message vs. its relayed copy: same subject, payload and (original) headers in order.
inline void expect_same(const StoredMessage& s, const StoredMessage& t, bool native) {
  ASSERT_EQ(s.subject, t.subject) << "source seq " << s.seq;
  ASSERT_EQ(s.payload, t.payload) << "source seq " << s.seq;
  std::vector<Header> sh, th;
  ASSERT_TRUE(parse_header_block(s.header_block, sh));
  ASSERT_TRUE(parse_header_block(t.header_block, th));
  if (native) {
    std::erase_if(th, [](const Header& h) { return h.key == "Nats-Stream-Source"; });
  } else {
    // The relay appends its headers after the original ones, which stay byte for byte.
    ASSERT_GE(t.header_block.size(), s.header_block.size());
    if (!s.header_block.empty()) {
      ASSERT_EQ(t.header_block.substr(0, s.header_block.size() - 2),
                s.header_block.substr(0, s.header_block.size() - 2))
          << "source seq " << s.seq;
    }
    th = original_headers(th);
  }
  ASSERT_EQ(sh, th) << "source seq " << s.seq;
}

}  // namespace mqdr::nats::test
