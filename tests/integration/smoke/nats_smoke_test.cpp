// NATS JetStream servers of the harness: on A and B, create a stream, publish, read it back with
// a durable pull consumer, delete the stream. On the hub/leaf pair (JetStream domains `hub` and
// `leaf`, started on demand with `harness.sh up nats-native`): create a stream in the hub domain
// through the leaf, and a leaf stream that sources from it (what mqdr's native mode relies on).
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "tests/harness/endpoints.hpp"
#include "tests/integration/smoke/smoke_util.hpp"

namespace {

using namespace std::chrono_literals;
using mqdr::test::Endpoints;
using mqdr::test::smoke::Deadline;
using mqdr::test::smoke::unique_name;

struct Nats {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  Nats() = default;
  Nats(const Nats&) = delete;
  Nats& operator=(const Nats&) = delete;
  ~Nats() {
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
  }
};

// Connects and opens a JetStream context (in `domain` when not empty); "" or the error.
std::string open(Nats& n, const std::string& url, const char* domain = nullptr) {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, url.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 5000);
  if (s == NATS_OK) s = natsConnection_Connect(&n.nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) return std::string("connect ") + url + ": " + natsStatus_GetText(s);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Domain = domain;
  jo.Wait = 10000;
  s = natsConnection_JetStream(&n.js, n.nc, &jo);
  if (s != NATS_OK) return std::string("jetstream context: ") + natsStatus_GetText(s);
  return "";
}

std::string js_error(const char* what, natsStatus s, jsErrCode jerr) {
  return std::string(what) + ": " + natsStatus_GetText(s) + " (jetstream error " +
         std::to_string(static_cast<int>(jerr)) + ") " + nats_GetLastError(nullptr);
}

std::string add_stream(jsCtx* js, const std::string& name, const std::string& subject,
                       jsStreamSource* source = nullptr) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name.c_str();
  const char* subjects[] = {subject.c_str()};
  if (!subject.empty()) {
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
  }
  cfg.Storage = js_FileStorage;
  if (source != nullptr) {
    cfg.Sources = &source;
    cfg.SourcesLen = 1;
  }
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_AddStream(&si, js, &cfg, nullptr, &jerr);
  jsStreamInfo_Destroy(si);
  return s == NATS_OK ? "" : js_error(("add stream " + name).c_str(), s, jerr);
}

std::string publish(jsCtx* js, const std::string& subject, const std::string& data,
                     uint64_t* seq = nullptr) {
  jsPubAck* pa = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_Publish(&pa, js, subject.c_str(), data.data(),
                                  static_cast<int>(data.size()), nullptr, &jerr);
  if (s == NATS_OK && seq != nullptr) *seq = pa->Sequence;
  jsPubAck_Destroy(pa);
  return s == NATS_OK ? "" : js_error(("publish " + subject).c_str(), s, jerr);
}

uint64_t stream_messages(jsCtx* js, const std::string& name) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  uint64_t n = 0;
  if (js_GetStreamInfo(&si, js, name.c_str(), nullptr, &jerr) == NATS_OK) n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

void delete_stream(jsCtx* js, const std::string& name) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  EXPECT_EQ(js_DeleteStream(js, name.c_str(), nullptr, &jerr), NATS_OK) << "delete " << name;
}

class NatsSmoke : public ::testing::TestWithParam<char> {
 protected:
  std::string url() const {
    return GetParam() == 'a' ? Endpoints::get().nats_a : Endpoints::get().nats_b;
  }
};

TEST_P(NatsSmoke, StreamPublishAndPullConsume) {
  MQDR_REQUIRE_BROKER(url());
  Nats n;
  ASSERT_EQ(open(n, url()), "");
  const std::string stream = unique_name("SMOKE_");
  const std::string subject = "smoke." + stream;
  ASSERT_EQ(add_stream(n.js, stream, subject), "");

  const std::string payload = "hello " + stream;
  uint64_t seq = 0;
  ASSERT_EQ(publish(n.js, subject, payload, &seq), "");
  EXPECT_EQ(seq, 1u);

  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  natsSubscription* sub = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_PullSubscribe(&sub, n.js, subject.c_str(), "smoke-durable", nullptr, &so, &jerr);
  ASSERT_EQ(s, NATS_OK) << js_error("pull subscribe", s, jerr);
  natsMsgList list{};
  s = natsSubscription_Fetch(&list, sub, 1, 10000, &jerr);
  ASSERT_EQ(s, NATS_OK) << js_error("fetch", s, jerr);
  ASSERT_EQ(list.Count, 1);
  EXPECT_EQ(std::string(natsMsg_GetData(list.Msgs[0]), natsMsg_GetDataLength(list.Msgs[0])), payload);
  EXPECT_EQ(natsMsg_AckSync(list.Msgs[0], nullptr, &jerr), NATS_OK);
  natsMsgList_Destroy(&list);
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);

  delete_stream(n.js, stream);
}

INSTANTIATE_TEST_SUITE_P(Servers, NatsSmoke, ::testing::Values('a', 'b'),
                         [](const auto& info) { return std::string("nats_") + info.param; });

TEST(NatsNativePairSmoke, LeafStreamSourcesFromHubDomain) {
  const auto& ep = Endpoints::get();
  if (!mqdr::test::reachable(ep.nats_hub) || !mqdr::test::reachable(ep.nats_leaf)) {
    // The pair is optional in the harness: start it on demand.
    EXPECT_EQ(mqdr::test::harness("up nats-native"), 0);
  }
  MQDR_REQUIRE_BROKER(ep.nats_hub);
  MQDR_REQUIRE_BROKER(ep.nats_leaf);

  Nats hub;    // local domain `hub`
  Nats leaf;   // local domain `leaf`
  Nats remote; // connected to the leaf, JetStream API of domain `hub` through the leafnode
  ASSERT_EQ(open(hub, ep.nats_hub), "");
  ASSERT_EQ(open(leaf, ep.nats_leaf), "");
  ASSERT_EQ(open(remote, ep.nats_leaf, "hub"), "");

  const std::string src = unique_name("SMOKE_HUB_");
  const std::string dst = unique_name("SMOKE_LEAF_");
  const std::string subject = "smoke." + src;
  ASSERT_EQ(add_stream(remote.js, src, subject), "") << "hub domain not reachable from the leaf";
  ASSERT_EQ(publish(hub.js, subject, "one"), "");
  ASSERT_EQ(publish(hub.js, subject, "two"), "");
  EXPECT_EQ(stream_messages(remote.js, src), 2u);

  jsExternalStream ext{};
  ext.APIPrefix = "$JS.hub.API";
  ext.DeliverPrefix = "";  // cnats 3.4 marshals it unconditionally: never leave it null
  jsStreamSource source{};
  source.Name = src.c_str();
  source.External = &ext;
  ASSERT_EQ(add_stream(leaf.js, dst, "", &source), "");

  Deadline deadline(30s);
  while (stream_messages(leaf.js, dst) < 2 && !deadline.expired()) std::this_thread::sleep_for(200ms);
  EXPECT_EQ(stream_messages(leaf.js, dst), 2u) << "the leaf stream did not source from the hub";

  delete_stream(leaf.js, dst);
  delete_stream(remote.js, src);
}

}  // namespace
