// AMQP properties <-> Record: every property and every field kind survives the round trip.

#include <gtest/gtest.h>

#include <cstring>

#include "rabbitmq/codec.hpp"
#include "rabbitmq/connection.hpp"
#include "rabbitmq/management.hpp"

namespace mqdr::rabbitmq {
namespace {

amqp_field_value_t utf8(const char* s) {
  amqp_field_value_t v;
  v.kind = AMQP_FIELD_KIND_UTF8;
  v.value.bytes = amqp_cstring_bytes(s);
  return v;
}

TEST(RabbitCodec, TableRoundTripKeepsEveryKindAndNesting) {
  amqp_field_value_t arr[3];
  arr[0] = utf8("a");
  arr[1].kind = AMQP_FIELD_KIND_I64;
  arr[1].value.i64 = -5;
  arr[2].kind = AMQP_FIELD_KIND_VOID;
  amqp_table_entry_t inner[2];
  inner[0].key = amqp_cstring_bytes("deep");
  inner[0].value.kind = AMQP_FIELD_KIND_F64;
  inner[0].value.value.f64 = 3.25;
  inner[1].key = amqp_cstring_bytes("list");
  inner[1].value.kind = AMQP_FIELD_KIND_ARRAY;
  inner[1].value.value.array = {3, arr};

  std::vector<amqp_table_entry_t> e(14);
  auto set = [&](int i, const char* k, amqp_field_value_t v) {
    e[i].key = amqp_cstring_bytes(k);
    e[i].value = v;
  };
  amqp_field_value_t v;
  v.kind = AMQP_FIELD_KIND_BOOLEAN; v.value.boolean = 1; set(0, "bool", v);
  v.kind = AMQP_FIELD_KIND_I8; v.value.i8 = -8; set(1, "i8", v);
  v.kind = AMQP_FIELD_KIND_U8; v.value.u8 = 200; set(2, "u8", v);
  v.kind = AMQP_FIELD_KIND_I16; v.value.i16 = -1600; set(3, "i16", v);
  v.kind = AMQP_FIELD_KIND_U16; v.value.u16 = 60000; set(4, "u16", v);
  v.kind = AMQP_FIELD_KIND_I32; v.value.i32 = -320000; set(5, "i32", v);
  v.kind = AMQP_FIELD_KIND_U32; v.value.u32 = 4000000000u; set(6, "u32", v);
  v.kind = AMQP_FIELD_KIND_I64; v.value.i64 = -(1LL << 40); set(7, "i64", v);
  v.kind = AMQP_FIELD_KIND_TIMESTAMP; v.value.u64 = 1764000000; set(8, "ts", v);
  v.kind = AMQP_FIELD_KIND_F32; v.value.f32 = 1.5f; set(9, "f32", v);
  v.kind = AMQP_FIELD_KIND_DECIMAL; v.value.decimal = {2, 12345}; set(10, "dec", v);
  v.kind = AMQP_FIELD_KIND_BYTES; v.value.bytes = {3, const_cast<char*>("\0\1\2")}; set(11, "bin", v);
  set(12, "str", utf8("héllo"));
  v.kind = AMQP_FIELD_KIND_TABLE; v.value.table = {2, inner}; set(13, "nested", v);
  amqp_table_t table{static_cast<int>(e.size()), e.data()};

  const std::string encoded = encode_table(table);
  Arena arena;
  amqp_table_t decoded;
  ASSERT_TRUE(decode_table(encoded, decoded, arena));
  ASSERT_EQ(decoded.num_entries, 14);
  EXPECT_EQ(encode_table(decoded), encoded);
  EXPECT_EQ(decoded.entries[1].value.value.i8, -8);
  EXPECT_EQ(decoded.entries[6].value.value.u32, 4000000000u);
  EXPECT_EQ(decoded.entries[7].value.value.i64, -(1LL << 40));
  EXPECT_EQ(decoded.entries[8].value.kind, AMQP_FIELD_KIND_TIMESTAMP);
  EXPECT_EQ(decoded.entries[10].value.value.decimal.value, 12345u);
  EXPECT_EQ(str_of(decoded.entries[11].value.value.bytes), std::string("\0\1\2", 3));
  const auto& nested = decoded.entries[13].value.value.table;
  ASSERT_EQ(nested.num_entries, 2);
  EXPECT_DOUBLE_EQ(nested.entries[0].value.value.f64, 3.25);
  ASSERT_EQ(nested.entries[1].value.value.array.num_entries, 3);
  EXPECT_EQ(nested.entries[1].value.value.array.entries[2].kind, AMQP_FIELD_KIND_VOID);
}

TEST(RabbitCodec, TruncatedOrUnknownDataIsRejected) {
  amqp_table_entry_t e;
  e.key = amqp_cstring_bytes("k");
  e.value = utf8("value");
  amqp_table_t t{1, &e};
  std::string enc = encode_table(t);
  Arena arena;
  amqp_table_t out;
  EXPECT_FALSE(decode_table(enc.substr(0, enc.size() - 2), out, arena));
  std::string bad = enc;
  bad[4 + 4 + 1] = 'Z';  // value kind
  EXPECT_FALSE(decode_table(bad, out, arena));
}

TEST(RabbitCodec, PropertiesRoundTripAndOriginHeader) {
  amqp_basic_properties_t p;
  std::memset(&p, 0, sizeof(p));
  p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG |
             AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_PRIORITY_FLAG |
             AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG |
             AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
             AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG;
  p.content_type = amqp_cstring_bytes("application/json");
  p.content_encoding = amqp_cstring_bytes("gzip");
  amqp_table_entry_t h[2];
  h[0].key = amqp_cstring_bytes("region");
  h[0].value = utf8("eu");
  h[1].key = amqp_cstring_bytes("n");
  h[1].value.kind = AMQP_FIELD_KIND_I32;
  h[1].value.value.i32 = 7;
  p.headers = {2, h};
  p.delivery_mode = 2;
  p.priority = 9;
  p.correlation_id = amqp_cstring_bytes("corr");
  p.reply_to = amqp_cstring_bytes("replies");
  p.expiration = amqp_cstring_bytes("60000");
  p.message_id = amqp_cstring_bytes("m-1");
  p.timestamp = 1764030000;
  p.type = amqp_cstring_bytes("order.created");
  p.app_id = amqp_cstring_bytes("shop");

  Record r;
  properties_to_record(p, r);
  EXPECT_EQ(r.timestamp_ms, 1764030000000);
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0], (Header{"region", "eu"}));
  EXPECT_EQ(r.headers[1], (Header{"n", "7"}));

  Arena arena;
  amqp_basic_properties_t back;
  record_to_properties(r, back, arena, {});
  EXPECT_EQ(back._flags, p._flags);
  EXPECT_EQ(str_of(back.content_type), "application/json");
  EXPECT_EQ(str_of(back.expiration), "60000");
  EXPECT_EQ(back.priority, 9);
  EXPECT_EQ(back.delivery_mode, 2);
  EXPECT_EQ(back.timestamp, 1764030000u);
  EXPECT_EQ(encode_table(back.headers), encode_table(p.headers));

  Record again;
  properties_to_record(back, again);
  EXPECT_TRUE(again.same_content(r));

  amqp_basic_properties_t with_origin;
  record_to_properties(r, with_origin, arena, {{kOriginHeader, "rabbit-a"}});
  ASSERT_EQ(with_origin.headers.num_entries, 3);
  EXPECT_EQ(find_string_header(with_origin, kOriginHeader), "rabbit-a");
  EXPECT_EQ(find_string_header(with_origin, "region"), "eu");
}

TEST(RabbitCodec, AbsentPropertiesStayAbsent) {
  amqp_basic_properties_t p;
  std::memset(&p, 0, sizeof(p));
  Record r;
  properties_to_record(p, r);
  EXPECT_TRUE(r.attributes.empty());
  Arena arena;
  amqp_basic_properties_t back;
  record_to_properties(r, back, arena, {});
  EXPECT_EQ(back._flags, 0u);
}

TEST(RabbitManagement, EncodesPathSegments) {
  EXPECT_EQ(Management::enc("/"), "%2F");
  EXPECT_EQ(Management::enc("orders"), "orders");
  EXPECT_EQ(Management::enc("a b/c"), "a%20b%2Fc");
}

}  // namespace
}  // namespace mqdr::rabbitmq
