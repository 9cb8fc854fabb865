// No broker: ack subject parsing, header blocks byte for byte, relay headers, stream selection and
// the target spec rules.

#include <gtest/gtest.h>

#include "nats/client.hpp"
#include "nats/reader.hpp"
#include "nats/sink.hpp"
#include "nats/source.hpp"
#include "nats/topology.hpp"

namespace mqdr::nats {
namespace {

TEST(AckSubject, ParsesV1AndV2Forms) {
  auto v1 = parse_ack_subject("$JS.ACK.ORDERS.mqdr-m.3.1042.77.1764038400123456789.12");
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->delivered, 3u);
  EXPECT_EQ(v1->stream_seq, 1042u);
  EXPECT_EQ(v1->consumer_seq, 77u);
  EXPECT_EQ(v1->timestamp_ns, 1764038400123456789LL);
  EXPECT_EQ(v1->pending, 12u);
  auto v2 = parse_ack_subject("$JS.ACK.hub.ACCHASH.ORDERS.c.1.5.6.1700000000000000000.0.tok");
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->stream_seq, 5u);
  EXPECT_EQ(v2->consumer_seq, 6u);
  EXPECT_EQ(v2->pending, 0u);
  EXPECT_FALSE(parse_ack_subject("_INBOX.abc.def"));
  EXPECT_FALSE(parse_ack_subject("$JS.ACK.S.c.x.5.6.7.8"));
}

TEST(HeaderBlock, RawMessageKeepsOrderAndBytes) {
  ensure_library();
  const std::string block = "NATS/1.0\r\nZ-Last: 1\r\nA-First:two\r\nZ-Last: 3\r\n\r\n";
  Ptr<natsMsg> msg;
  ASSERT_TRUE(make_raw_message("orders.eu", block, "payload", msg).is_ok());
  EXPECT_EQ(raw_header_block(msg.get()), block);
  EXPECT_EQ(std::string(natsMsg_GetData(msg.get()), 7), "payload");
  std::vector<Header> hs;
  ASSERT_TRUE(parse_header_block(block, hs));
  ASSERT_EQ(hs.size(), 3u);
  EXPECT_EQ(hs[0], (Header{"Z-Last", "1"}));
  EXPECT_EQ(hs[1], (Header{"A-First", "two"}));
  EXPECT_EQ(hs[2], (Header{"Z-Last", "3"}));
  EXPECT_EQ(last_header_value(block, "Z-Last"), "3");
  EXPECT_FALSE(last_header_value(block, "Missing"));
  // Without headers there is no block.
  Ptr<natsMsg> plain;
  ASSERT_TRUE(make_raw_message("orders.eu", "", "p", plain).is_ok());
  EXPECT_TRUE(raw_header_block(plain.get()).empty());
  EXPECT_FALSE(parse_header_block("NATS/1.0\r\nbroken-line\r\n\r\n", hs));
}

TEST(RelayHeaders, AppendsSourcePositionAndRenamesWhatTheTargetWouldInterpret) {
  Record r;
  r.item = "ORDERS";
  r.position = 42;
  r.key = "orders.eu";
  r.value = "x";
  r.headers = {{"X-A", "1"}, {"Nats-Msg-Id", "client-7"}, {"Nats-Expected-Last-Sequence", "41"}};
  r.attributes = {{std::string(kTimeNsAttribute), "1700000000000000001"}};
  const std::string lines = relay_header_lines(r, "ORDERS");
  EXPECT_EQ(lines,
            "NATS/1.0\r\nX-A: 1\r\nMqdr-Orig-Nats-Msg-Id: client-7\r\n"
            "Mqdr-Orig-Nats-Expected-Last-Sequence: 41\r\n"
            "Nats-Msg-Id: ORDERS:42\r\nMqdr-Source-Stream: ORDERS\r\nMqdr-Source-Sequence: 42\r\n"
            "Mqdr-Source-Time: 1700000000000000001\r\n");
  std::vector<Header> parsed;
  ASSERT_TRUE(parse_header_block(lines + "Nats-Expected-Last-Msg-Id: ORDERS:41\r\n\r\n", parsed));
  EXPECT_EQ(original_headers(parsed), r.headers);
}

TEST(RelayHeaders, RawBlockIsKeptByteForByte) {
  Record r;
  r.position = 1;
  r.headers = {{"X-A", "1"}};
  r.attributes = {{std::string(kRawHeadersAttribute), "NATS/1.0\r\nX-A:1\r\n\r\n"}};
  EXPECT_EQ(relay_header_lines(r, "S").rfind("NATS/1.0\r\nX-A:1\r\nNats-Msg-Id: S:1\r\n", 0), 0u);
}

TEST(StreamSelection, WholeNameRegexes) {
  StreamSelector sel({"ORDERS", "pay\\..*"});
  EXPECT_TRUE(sel.matches("ORDERS"));
  EXPECT_FALSE(sel.matches("ORDERS2"));
  EXPECT_TRUE(sel.matches("pay.eu"));
  EXPECT_FALSE(sel.matches("xpay.eu"));
}

TEST(TargetSpec, RelayRefusesWorkQueueAndSubjectlessStreams) {
  StreamSpec src;
  src.name = "JOBS";
  src.subjects = {"jobs.>"};
  src.retention = js_WorkQueuePolicy;
  StreamSpec out;
  Status st = target_spec(src, NatsMode::relay, "", out);
  EXPECT_TRUE(st.is_fatal());
  EXPECT_NE(st.message().find("mode: native"), std::string::npos);
  src.retention = js_LimitsPolicy;
  src.subjects.clear();
  EXPECT_TRUE(target_spec(src, NatsMode::relay, "", out).is_fatal());
}

TEST(TargetSpec, NativeSourcesThroughTheDomainWithoutSubjects) {
  StreamSpec src;
  src.name = "ORDERS";
  src.subjects = {"orders.>"};
  src.max_age_ns = 7;
  StreamSpec out;
  ASSERT_TRUE(target_spec(src, NatsMode::native, api_prefix_for_domain("hub"), out).is_ok());
  EXPECT_TRUE(out.subjects.empty());
  EXPECT_EQ(out.source_name, "ORDERS");
  EXPECT_EQ(out.source_api_prefix, "$JS.hub.API");
  EXPECT_EQ(out.max_age_ns, 7);
}

TEST(Names, ConsumerNameHasNoForbiddenCharacters) {
  EXPECT_EQ(consumer_name_for("orders.nats east"), "mqdr-orders_nats_east");
}

}  // namespace
}  // namespace mqdr::nats
