// Exchange mirroring end to end between the harness's two RabbitMQ nodes: topic, direct, fanout
// and headers exchanges, every property set, 100 000 messages. On the target every bound queue
// holds the same messages in the same order, bodies and properties identical (besides the
// x-mqdr-origin header); the primary's own queues lose nothing; unroutable messages are parked.

#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <map>

#include "rabbit_fixture.hpp"
#include "rabbitmq/capture.hpp"

namespace mqdr::test::rabbit {
namespace {

struct Topology {
  std::string sfx = suffix();
  std::string ex_topic = "it.topic." + sfx;
  std::string ex_direct = "it.direct." + sfx;
  std::string ex_fanout = "it.fanout." + sfx;
  std::string ex_headers = "it.headers." + sfx;
  std::string qt1 = "it.qt1." + sfx, qt2 = "it.qt2." + sfx;
  std::string qd1 = "it.qd1." + sfx, qd2 = "it.qd2." + sfx;
  std::string qf1 = "it.qf1." + sfx, qf2 = "it.qf2." + sfx;
  std::string qh1 = "it.qh1." + sfx, qh2 = "it.qh2." + sfx;

  std::vector<std::string> exchanges() const { return {ex_topic, ex_direct, ex_fanout, ex_headers}; }
  std::vector<std::string> queues() const { return {qt1, qt2, qd1, qd2, qf1, qf2, qh1, qh2}; }

  void declare(Client& c) const {
    c.exchange(ex_topic, "topic");
    c.exchange(ex_direct, "direct");
    c.exchange(ex_fanout, "fanout");
    c.exchange(ex_headers, "headers");
    for (const auto& q : queues()) c.queue(q);
    c.bind(qt1, ex_topic, "orders.#");
    c.bind(qt2, ex_topic, "*.eu");
    c.bind(qd1, ex_direct, "k1");
    c.bind(qd2, ex_direct, "k2");
    c.bind(qf1, ex_fanout, "");
    c.bind(qf2, ex_fanout, "");
    amqp_table_entry_t all[2];
    all[0].key = amqp_cstring_bytes("x-match");
    all[0].value.kind = AMQP_FIELD_KIND_UTF8;
    all[0].value.value.bytes = amqp_cstring_bytes("all");
    all[1].key = amqp_cstring_bytes("region");
    all[1].value.kind = AMQP_FIELD_KIND_UTF8;
    all[1].value.value.bytes = amqp_cstring_bytes("eu");
    c.bind(qh1, ex_headers, "", amqp_table_t{2, all});
    amqp_table_entry_t any[3];
    any[0] = all[0];
    any[0].value.value.bytes = amqp_cstring_bytes("any");
    any[1] = all[1];
    any[1].value.value.bytes = amqp_cstring_bytes("us");
    any[2].key = amqp_cstring_bytes("kind");
    any[2].value.kind = AMQP_FIELD_KIND_UTF8;
    any[2].value.value.bytes = amqp_cstring_bytes("x");
    c.bind(qh2, ex_headers, "", amqp_table_t{3, any});
  }

  void remove(Client& c, const std::string& mirror) const {
    for (const auto& q : queues()) c.delete_queue(q);
    for (const auto& e : exchanges()) {
      c.delete_queue(rabbitmq::capture_queue_name(mirror, e));
      c.delete_exchange(e);
    }
    c.delete_queue("mqdr.unroutable." + mirror);
  }
};

// One published message and where the source routes it.
struct Sent {
  std::string exchange;
  std::string key;
  std::string region;
  std::string kind;
};

// Publishes message i with every property set; returns where it should land.
void publish_one(Client& c, const Topology& t, int i, std::map<std::string, std::vector<std::string>>& expect,
                 std::size_t& unroutable, std::size_t& captured) {
  static const char* topic_keys[] = {"orders.eu", "orders.us", "x.eu", "orders.eu.paid", "none.none"};
  static const char* direct_keys[] = {"k1", "k2", "k3"};
  static const char* regions[] = {"eu", "us", "ap"};
  const int kind = i % 4;
  Sent s;
  s.region = (i % 4000 == 3) ? regions[2] : regions[(i / 4) % 2];
  s.kind = (i % 7 == 0) ? "x" : "y";
  switch (kind) {
    case 0:
      s.exchange = t.ex_topic;
      // Every 1000th topic message goes nowhere on the source either (unroutable on the target).
      s.key = (i % 4000 == 0) ? topic_keys[4] : topic_keys[(i / 4) % 4];
      break;
    case 1:
      s.exchange = t.ex_direct;
      s.key = (i % 4000 == 1) ? direct_keys[2] : direct_keys[(i / 4) % 2];
      break;
    case 2: s.exchange = t.ex_fanout; s.key = "f." + std::to_string(i % 5); break;
    default: s.exchange = t.ex_headers; s.key = ""; break;
  }
  const std::string body = fmt::format("{}#{}|", s.exchange, i) + std::string("\0\x01\xff", 3);

  amqp_table_entry_t inner[2];
  inner[0].key = amqp_cstring_bytes("depth");
  inner[0].value.kind = AMQP_FIELD_KIND_I64;
  inner[0].value.value.i64 = -static_cast<std::int64_t>(i);
  amqp_field_value_t arr[2];
  arr[0].kind = AMQP_FIELD_KIND_UTF8;
  arr[0].value.bytes = amqp_cstring_bytes("a");
  arr[1].kind = AMQP_FIELD_KIND_F64;
  arr[1].value.f64 = i / 3.0;
  inner[1].key = amqp_cstring_bytes("list");
  inner[1].value.kind = AMQP_FIELD_KIND_ARRAY;
  inner[1].value.value.array = {2, arr};
  amqp_table_entry_t h[6];
  h[0].key = amqp_cstring_bytes("region");
  h[0].value.kind = AMQP_FIELD_KIND_UTF8;
  h[0].value.value.bytes = bytes_of(s.region);
  h[1].key = amqp_cstring_bytes("kind");
  h[1].value.kind = AMQP_FIELD_KIND_UTF8;
  h[1].value.value.bytes = bytes_of(s.kind);
  h[2].key = amqp_cstring_bytes("seq");
  h[2].value.kind = AMQP_FIELD_KIND_I32;
  h[2].value.value.i32 = i;
  h[3].key = amqp_cstring_bytes("nested");
  h[3].value.kind = AMQP_FIELD_KIND_TABLE;
  h[3].value.value.table = {2, inner};
  h[4].key = amqp_cstring_bytes("flag");
  h[4].value.kind = AMQP_FIELD_KIND_BOOLEAN;
  h[4].value.value.boolean = i % 2;
  h[5].key = amqp_cstring_bytes("when");
  h[5].value.kind = AMQP_FIELD_KIND_TIMESTAMP;
  h[5].value.value.u64 = 1764000000 + static_cast<std::uint64_t>(i);

  const std::string corr = fmt::format("corr-{}", i);
  const std::string mid = fmt::format("msg-{}", i);
  amqp_basic_properties_t p;
  std::memset(&p, 0, sizeof(p));
  p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG |
             AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_PRIORITY_FLAG |
             AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG |
             AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
             AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_USER_ID_FLAG | AMQP_BASIC_APP_ID_FLAG;
  p.content_type = amqp_cstring_bytes("application/octet-stream");
  p.content_encoding = amqp_cstring_bytes("identity");
  p.headers = {6, h};
  p.delivery_mode = 2;
  p.priority = static_cast<std::uint8_t>(i % 10);
  p.correlation_id = bytes_of(corr);
  p.reply_to = amqp_cstring_bytes("replies");
  p.expiration = amqp_cstring_bytes("86400000");
  p.message_id = bytes_of(mid);
  p.timestamp = 1764000000 + static_cast<std::uint64_t>(i);
  p.type = amqp_cstring_bytes("order.event");
  p.user_id = amqp_cstring_bytes("mqdr");
  p.app_id = amqp_cstring_bytes("mqdr-it");
  c.publish(s.exchange, s.key, p, body);

  // Where the source routes it.
  std::vector<std::string> to;
  if (s.exchange == t.ex_topic) {
    if (s.key.rfind("orders.", 0) == 0) to.push_back(t.qt1);
    if (s.key == "orders.eu" || s.key == "x.eu") to.push_back(t.qt2);
  } else if (s.exchange == t.ex_direct) {
    if (s.key == "k1") to.push_back(t.qd1);
    if (s.key == "k2") to.push_back(t.qd2);
  } else if (s.exchange == t.ex_fanout) {
    to = {t.qf1, t.qf2};
  } else {
    if (s.region == "eu") to.push_back(t.qh1);
    if (s.region == "us" || s.kind == "x") to.push_back(t.qh2);
  }
  // Captured but routed nowhere (a direct exchange's capture only follows bound keys).
  if (to.empty() && s.exchange != t.ex_direct) ++unroutable;
  if (!to.empty() || s.exchange != t.ex_direct) ++captured;
  for (const auto& q : to) expect[q].push_back(body);
}

TEST(RabbitExchangeMirror, AllExchangeTypesAllPropertiesInOrder) {
  constexpr int kMessages = 100000;
  Topology t;
  const std::string mirror = "it-ex-" + t.sfx;
  Client a(node_a());
  Client b(node_b());
  t.declare(a);

  auto ctx = mirror_context(mirror, node_a(), node_b());
  ctx.mirror.rabbitmq.exchanges = t.exchanges();
  ctx.mirror.rabbitmq.refresh_interval = Duration(2000);
  RunningWorker worker(ctx);

  // Capture is live once every capture queue has its consumer, and definitions reached B.
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& e : t.exchanges()) {
          if (a.consumers(rabbitmq::capture_queue_name(mirror, e)) != 1) return false;
        }
        for (const auto& q : t.queues()) {
          if (b.depth(q) != 0) return false;
        }
        return true;
      },
      60s))
      << worker.stats().last_error;

  std::map<std::string, std::vector<std::string>> expect;
  std::size_t unroutable = 0;
  std::size_t captured = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kMessages; ++i) publish_one(a, t, i, expect, unroutable, captured);
  const auto t1 = std::chrono::steady_clock::now();
  ASSERT_GT(unroutable, 0u);

  // Every target queue reaches the source's count; unroutable ones are parked, not dropped.
  const std::string parking = "mqdr.unroutable." + mirror;
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& q : t.queues()) {
          if (b.depth(q) < static_cast<std::int64_t>(expect[q].size())) return false;
        }
        return b.depth(parking) >= static_cast<std::int64_t>(unroutable);
      },
      300s))
      << "last error: " << worker.stats().last_error;
  const auto t2 = std::chrono::steady_clock::now();
  std::cerr << "published in " << std::chrono::duration<double>(t1 - t0).count()
            << " s, mirrored after " << std::chrono::duration<double>(t2 - t0).count() << " s\n";
  EXPECT_TRUE(worker.stop().is_ok());
  // Every captured message was mirrored once (no restarts here, so no duplicates either).
  EXPECT_EQ(worker.stats().records_total, captured);

  for (const auto& q : t.queues()) {
    const auto& want = expect[q];
    ASSERT_EQ(a.depth(q), static_cast<std::int64_t>(want.size())) << q << ": the primary lost messages";
    ASSERT_EQ(b.depth(q), static_cast<std::int64_t>(want.size())) << q << ": duplicates on the target";
    auto from_a = a.take(q, want.size());
    auto from_b = b.take(q, want.size());
    ASSERT_EQ(from_a.size(), want.size()) << q;
    ASSERT_EQ(from_b.size(), want.size()) << q;
    for (std::size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(from_a[i].body, want[i]) << q << " #" << i;
      ASSERT_EQ(from_b[i].body, want[i]) << q << " #" << i << " (order or content differs)";
      ASSERT_EQ(from_b[i].routing_key, from_a[i].routing_key) << q << " #" << i;
      ASSERT_EQ(plain_attributes(from_b[i].record), plain_attributes(from_a[i].record)) << q << " #" << i;
      ASSERT_EQ(app_headers(from_b[i].record), app_headers(from_a[i].record)) << q << " #" << i;
      ASSERT_EQ(typed_app_headers(from_b[i].record), typed_app_headers(from_a[i].record))
          << q << " #" << i;
      bool origin = false;
      for (const auto& h : from_b[i].record.headers) {
        origin = origin || (h.key == "x-mqdr-origin" && h.value == "rabbit-a");
      }
      ASSERT_TRUE(origin) << q << " #" << i;
    }
  }
  // Parked messages keep where they were going.
  auto parked = b.take(parking, unroutable);
  ASSERT_EQ(parked.size(), unroutable);
  for (const auto& m : parked) {
    bool has_exchange = false;
    for (const auto& h : m.record.headers) has_exchange = has_exchange || h.key == "x-mqdr-exchange";
    EXPECT_TRUE(has_exchange);
  }
  t.remove(a, mirror);
  t.remove(b, mirror);
}

}  // namespace
}  // namespace mqdr::test::rabbit
