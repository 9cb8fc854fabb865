#include "rabbitmq/codec.hpp"

#include <cstring>

#include <nlohmann/json.hpp>

#include "rabbitmq/connection.hpp"

namespace mqdr::rabbitmq {

namespace {

// ---- writer / reader of the binary form (big-endian, counts rather than byte lengths) --------

void put_uint(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_bytes(std::string& out, const amqp_bytes_t& b) {
  put_uint(out, b.len, 4);
  if (b.len > 0) out.append(static_cast<const char*>(b.bytes), b.len);
}

void put_value(std::string& out, const amqp_field_value_t& v);

void put_table(std::string& out, const amqp_table_t& t) {
  put_uint(out, static_cast<std::uint64_t>(t.num_entries), 4);
  for (int i = 0; i < t.num_entries; ++i) {
    put_bytes(out, t.entries[i].key);
    put_value(out, t.entries[i].value);
  }
}

void put_value(std::string& out, const amqp_field_value_t& v) {
  out.push_back(static_cast<char>(v.kind));
  switch (v.kind) {
    case AMQP_FIELD_KIND_BOOLEAN: put_uint(out, v.value.boolean ? 1 : 0, 1); break;
    case AMQP_FIELD_KIND_I8: put_uint(out, static_cast<std::uint8_t>(v.value.i8), 1); break;
    case AMQP_FIELD_KIND_U8: put_uint(out, v.value.u8, 1); break;
    case AMQP_FIELD_KIND_I16: put_uint(out, static_cast<std::uint16_t>(v.value.i16), 2); break;
    case AMQP_FIELD_KIND_U16: put_uint(out, v.value.u16, 2); break;
    case AMQP_FIELD_KIND_I32: put_uint(out, static_cast<std::uint32_t>(v.value.i32), 4); break;
    case AMQP_FIELD_KIND_U32: put_uint(out, v.value.u32, 4); break;
    case AMQP_FIELD_KIND_I64: put_uint(out, static_cast<std::uint64_t>(v.value.i64), 8); break;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: put_uint(out, v.value.u64, 8); break;
    case AMQP_FIELD_KIND_F32: {
      std::uint32_t bits;
      std::memcpy(&bits, &v.value.f32, 4);
      put_uint(out, bits, 4);
      break;
    }
    case AMQP_FIELD_KIND_F64: {
      std::uint64_t bits;
      std::memcpy(&bits, &v.value.f64, 8);
      put_uint(out, bits, 8);
      break;
    }
    case AMQP_FIELD_KIND_DECIMAL:
      put_uint(out, v.value.decimal.decimals, 1);
      put_uint(out, v.value.decimal.value, 4);
      break;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: put_bytes(out, v.value.bytes); break;
    case AMQP_FIELD_KIND_ARRAY:
      put_uint(out, static_cast<std::uint64_t>(v.value.array.num_entries), 4);
      for (int i = 0; i < v.value.array.num_entries; ++i) put_value(out, v.value.array.entries[i]);
      break;
    case AMQP_FIELD_KIND_TABLE: put_table(out, v.value.table); break;
    case AMQP_FIELD_KIND_VOID: break;
    default: break;
  }
}

struct Reader {
  std::string_view data;
  std::size_t pos = 0;
  bool ok = true;

  std::uint64_t uint(int bytes) {
    if (pos + static_cast<std::size_t>(bytes) > data.size()) {
      ok = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(data[pos++]);
    return v;
  }
  std::string_view span(std::size_t n) {
    if (pos + n > data.size()) {
      ok = false;
      return {};
    }
    auto s = data.substr(pos, n);
    pos += n;
    return s;
  }
};

bool read_value(Reader& r, amqp_field_value_t& v, Arena& arena, int depth);

bool read_table(Reader& r, amqp_table_t& t, Arena& arena, int depth) {
  if (depth > 64) return false;
  const auto n = r.uint(4);
  if (!r.ok || n > r.data.size()) return false;
  t.num_entries = static_cast<int>(n);
  t.entries = n == 0 ? nullptr : arena.entries(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto klen = r.uint(4);
    auto key = r.span(klen);
    if (!r.ok) return false;
    t.entries[i].key = arena.bytes(key);
    if (!read_value(r, t.entries[i].value, arena, depth + 1)) return false;
  }
  return r.ok;
}

bool read_value(Reader& r, amqp_field_value_t& v, Arena& arena, int depth) {
  if (depth > 64) return false;
  v.kind = static_cast<std::uint8_t>(r.uint(1));
  switch (v.kind) {
    case AMQP_FIELD_KIND_BOOLEAN: v.value.boolean = r.uint(1) != 0; break;
    case AMQP_FIELD_KIND_I8: v.value.i8 = static_cast<std::int8_t>(r.uint(1)); break;
    case AMQP_FIELD_KIND_U8: v.value.u8 = static_cast<std::uint8_t>(r.uint(1)); break;
    case AMQP_FIELD_KIND_I16: v.value.i16 = static_cast<std::int16_t>(r.uint(2)); break;
    case AMQP_FIELD_KIND_U16: v.value.u16 = static_cast<std::uint16_t>(r.uint(2)); break;
    case AMQP_FIELD_KIND_I32: v.value.i32 = static_cast<std::int32_t>(r.uint(4)); break;
    case AMQP_FIELD_KIND_U32: v.value.u32 = static_cast<std::uint32_t>(r.uint(4)); break;
    case AMQP_FIELD_KIND_I64: v.value.i64 = static_cast<std::int64_t>(r.uint(8)); break;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: v.value.u64 = r.uint(8); break;
    case AMQP_FIELD_KIND_F32: {
      auto bits = static_cast<std::uint32_t>(r.uint(4));
      std::memcpy(&v.value.f32, &bits, 4);
      break;
    }
    case AMQP_FIELD_KIND_F64: {
      auto bits = r.uint(8);
      std::memcpy(&v.value.f64, &bits, 8);
      break;
    }
    case AMQP_FIELD_KIND_DECIMAL:
      v.value.decimal.decimals = static_cast<std::uint8_t>(r.uint(1));
      v.value.decimal.value = static_cast<std::uint32_t>(r.uint(4));
      break;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: {
      auto len = r.uint(4);
      auto s = r.span(len);
      v.value.bytes = arena.bytes(s);
      break;
    }
    case AMQP_FIELD_KIND_ARRAY: {
      auto n = r.uint(4);
      if (!r.ok || n > r.data.size()) return false;
      v.value.array.num_entries = static_cast<int>(n);
      v.value.array.entries = n == 0 ? nullptr : arena.values(n);
      for (std::size_t i = 0; i < n; ++i) {
        if (!read_value(r, v.value.array.entries[i], arena, depth + 1)) return false;
      }
      break;
    }
    case AMQP_FIELD_KIND_TABLE: return read_table(r, v.value.table, arena, depth + 1);
    case AMQP_FIELD_KIND_VOID: break;
    default: return false;
  }
  return r.ok;
}

nlohmann::json to_json(const amqp_field_value_t& v);

nlohmann::json table_json(const amqp_table_t& t) {
  auto j = nlohmann::json::object();
  for (int i = 0; i < t.num_entries; ++i) j[str_of(t.entries[i].key)] = to_json(t.entries[i].value);
  return j;
}

nlohmann::json to_json(const amqp_field_value_t& v) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_BOOLEAN: return v.value.boolean != 0;
    case AMQP_FIELD_KIND_I8: return v.value.i8;
    case AMQP_FIELD_KIND_U8: return v.value.u8;
    case AMQP_FIELD_KIND_I16: return v.value.i16;
    case AMQP_FIELD_KIND_U16: return v.value.u16;
    case AMQP_FIELD_KIND_I32: return v.value.i32;
    case AMQP_FIELD_KIND_U32: return v.value.u32;
    case AMQP_FIELD_KIND_I64: return v.value.i64;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: return v.value.u64;
    case AMQP_FIELD_KIND_F32: return v.value.f32;
    case AMQP_FIELD_KIND_F64: return v.value.f64;
    case AMQP_FIELD_KIND_DECIMAL: {
      double d = v.value.decimal.value;
      for (int i = 0; i < v.value.decimal.decimals; ++i) d /= 10;
      return d;
    }
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: return str_of(v.value.bytes);
    case AMQP_FIELD_KIND_ARRAY: {
      auto a = nlohmann::json::array();
      for (int i = 0; i < v.value.array.num_entries; ++i) a.push_back(to_json(v.value.array.entries[i]));
      return a;
    }
    case AMQP_FIELD_KIND_TABLE: return table_json(v.value.table);
    default: return nullptr;
  }
}

void put_attr(Record& r, const char* name, std::string value) {
  r.attributes.emplace_back(name, std::move(value));
}

const std::string* get_attr(const Record& r, std::string_view name) {
  for (const auto& a : r.attributes) {
    if (a.first == name) return &a.second;
  }
  return nullptr;
}

}  // namespace

amqp_table_entry_t* Arena::entries(std::size_t n) {
  entries_.emplace_back(n);
  return entries_.back().data();
}
amqp_field_value_t* Arena::values(std::size_t n) {
  values_.emplace_back(n);
  return values_.back().data();
}
amqp_bytes_t Arena::bytes(std::string_view s) {
  strings_.emplace_back(s);
  return bytes_of(strings_.back());
}
void Arena::clear() {
  entries_.clear();
  values_.clear();
  strings_.clear();
}

std::string encode_table(const amqp_table_t& table) {
  std::string out;
  put_table(out, table);
  return out;
}

bool decode_table(std::string_view data, amqp_table_t& out, Arena& arena) {
  Reader r{data};
  out = amqp_empty_table;
  if (!read_table(r, out, arena, 0)) return false;
  return r.pos == data.size();
}

std::optional<std::string> field_text(const amqp_field_value_t& value) {
  switch (value.kind) {
    case AMQP_FIELD_KIND_VOID: return std::nullopt;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: return str_of(value.value.bytes);
    case AMQP_FIELD_KIND_BOOLEAN: return value.value.boolean ? "true" : "false";
    default: return to_json(value).dump();
  }
}

// The property names follow the AMQP 0-9-1 spec; numbers are decimal text.
void properties_to_record(const amqp_basic_properties_t& p, Record& r) {
  const auto f = p._flags;
  if (f & AMQP_BASIC_CONTENT_TYPE_FLAG) put_attr(r, "amqp.content_type", str_of(p.content_type));
  if (f & AMQP_BASIC_CONTENT_ENCODING_FLAG) {
    put_attr(r, "amqp.content_encoding", str_of(p.content_encoding));
  }
  if (f & AMQP_BASIC_HEADERS_FLAG) {
    put_attr(r, kAttrHeaders, encode_table(p.headers));
    for (int i = 0; i < p.headers.num_entries; ++i) {
      r.headers.push_back(
          Header{str_of(p.headers.entries[i].key), field_text(p.headers.entries[i].value)});
    }
  }
  if (f & AMQP_BASIC_DELIVERY_MODE_FLAG) {
    put_attr(r, "amqp.delivery_mode", std::to_string(p.delivery_mode));
  }
  if (f & AMQP_BASIC_PRIORITY_FLAG) put_attr(r, "amqp.priority", std::to_string(p.priority));
  if (f & AMQP_BASIC_CORRELATION_ID_FLAG) {
    put_attr(r, "amqp.correlation_id", str_of(p.correlation_id));
  }
  if (f & AMQP_BASIC_REPLY_TO_FLAG) put_attr(r, "amqp.reply_to", str_of(p.reply_to));
  if (f & AMQP_BASIC_EXPIRATION_FLAG) put_attr(r, "amqp.expiration", str_of(p.expiration));
  if (f & AMQP_BASIC_MESSAGE_ID_FLAG) put_attr(r, "amqp.message_id", str_of(p.message_id));
  if (f & AMQP_BASIC_TIMESTAMP_FLAG) {
    put_attr(r, "amqp.timestamp", std::to_string(p.timestamp));
    r.timestamp_ms = static_cast<std::int64_t>(p.timestamp) * 1000;
  }
  if (f & AMQP_BASIC_TYPE_FLAG) put_attr(r, "amqp.type", str_of(p.type));
  if (f & AMQP_BASIC_USER_ID_FLAG) put_attr(r, "amqp.user_id", str_of(p.user_id));
  if (f & AMQP_BASIC_APP_ID_FLAG) put_attr(r, "amqp.app_id", str_of(p.app_id));
  if (f & AMQP_BASIC_CLUSTER_ID_FLAG) put_attr(r, "amqp.cluster_id", str_of(p.cluster_id));
}

void record_to_properties(const Record& r, amqp_basic_properties_t& p, Arena& arena,
                          const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  std::memset(&p, 0, sizeof(p));
  auto text = [&](const char* name, amqp_flags_t flag, amqp_bytes_t& field) {
    if (const auto* v = get_attr(r, name)) {
      p._flags |= flag;
      field = arena.bytes(*v);
    }
  };
  auto number = [&](const char* name, amqp_flags_t flag, auto& field) {
    if (const auto* v = get_attr(r, name)) {
      p._flags |= flag;
      field = static_cast<std::remove_reference_t<decltype(field)>>(std::stoull(*v));
    }
  };
  text("amqp.content_type", AMQP_BASIC_CONTENT_TYPE_FLAG, p.content_type);
  text("amqp.content_encoding", AMQP_BASIC_CONTENT_ENCODING_FLAG, p.content_encoding);
  number("amqp.delivery_mode", AMQP_BASIC_DELIVERY_MODE_FLAG, p.delivery_mode);
  number("amqp.priority", AMQP_BASIC_PRIORITY_FLAG, p.priority);
  text("amqp.correlation_id", AMQP_BASIC_CORRELATION_ID_FLAG, p.correlation_id);
  text("amqp.reply_to", AMQP_BASIC_REPLY_TO_FLAG, p.reply_to);
  text("amqp.expiration", AMQP_BASIC_EXPIRATION_FLAG, p.expiration);
  text("amqp.message_id", AMQP_BASIC_MESSAGE_ID_FLAG, p.message_id);
  number("amqp.timestamp", AMQP_BASIC_TIMESTAMP_FLAG, p.timestamp);
  text("amqp.type", AMQP_BASIC_TYPE_FLAG, p.type);
  text("amqp.user_id", AMQP_BASIC_USER_ID_FLAG, p.user_id);
  text("amqp.app_id", AMQP_BASIC_APP_ID_FLAG, p.app_id);
  text("amqp.cluster_id", AMQP_BASIC_CLUSTER_ID_FLAG, p.cluster_id);

  amqp_table_t original = amqp_empty_table;
  bool have = false;
  if (const auto* h = get_attr(r, kAttrHeaders)) {
    have = decode_table(*h, original, arena);
  } else if (!r.headers.empty()) {
    // Records from elsewhere (backups of other kinds): their headers become string headers.
    original.num_entries = static_cast<int>(r.headers.size());
    original.entries = arena.entries(r.headers.size());
    for (std::size_t i = 0; i < r.headers.size(); ++i) {
      original.entries[i].key = arena.bytes(r.headers[i].key);
      if (r.headers[i].value) {
        original.entries[i].value.kind = AMQP_FIELD_KIND_UTF8;
        original.entries[i].value.value.bytes = arena.bytes(*r.headers[i].value);
      } else {
        original.entries[i].value.kind = AMQP_FIELD_KIND_VOID;
      }
    }
    have = true;
  }
  if (!have && extra_headers.empty()) return;
  p._flags |= AMQP_BASIC_HEADERS_FLAG;
  if (extra_headers.empty()) {
    p.headers = original;
    return;
  }
  std::vector<int> keep;
  for (int i = 0; i < original.num_entries; ++i) {
    const std::string key = str_of(original.entries[i].key);
    bool replaced = false;
    for (const auto& e : extra_headers) replaced = replaced || e.first == key;
    if (!replaced) keep.push_back(i);
  }
  const std::size_t n = keep.size() + extra_headers.size();
  p.headers.num_entries = static_cast<int>(n);
  p.headers.entries = arena.entries(n);
  std::size_t k = 0;
  for (int i : keep) p.headers.entries[k++] = original.entries[i];
  for (const auto& e : extra_headers) {
    p.headers.entries[k].key = arena.bytes(e.first);
    p.headers.entries[k].value.kind = AMQP_FIELD_KIND_UTF8;
    p.headers.entries[k].value.value.bytes = arena.bytes(e.second);
    ++k;
  }
}

std::optional<std::string> find_string_header(const amqp_basic_properties_t& props,
                                              std::string_view key) {
  if (!(props._flags & AMQP_BASIC_HEADERS_FLAG)) return std::nullopt;
  for (int i = 0; i < props.headers.num_entries; ++i) {
    const auto& e = props.headers.entries[i];
    if (str_of(e.key) == key &&
        (e.value.kind == AMQP_FIELD_KIND_UTF8 || e.value.kind == AMQP_FIELD_KIND_BYTES)) {
      return str_of(e.value.value.bytes);
    }
  }
  return std::nullopt;
}

}  // namespace mqdr::rabbitmq
