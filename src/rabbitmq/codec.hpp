#pragma once
// AMQP message properties <-> mqdr::Record. Every basic property that is present is kept in
// Record::attributes under "amqp.<property>" (absent properties have no attribute, so presence
// survives the round trip); the headers table is kept whole and typed in "amqp.headers" (a
// self-describing binary form of the AMQP field table: nested tables, arrays, every numeric
// kind, decimals, timestamps, byte strings and voids). Record::headers additionally lists the
// top-level headers as text for readers that do not speak AMQP (backups, verify, logs).

#include <amqp.h>

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mqdr/record.hpp"

namespace mqdr::rabbitmq {

inline constexpr const char* kAttrHeaders = "amqp.headers";
inline constexpr const char* kAttrExchange = "amqp.exchange";        // exchange it was published to
inline constexpr const char* kAttrRedelivered = "amqp.redelivered";  // "1" when redelivered
inline constexpr const char* kOriginHeader = "x-mqdr-origin";        // cluster it was first seen on

// Owns the memory of amqp tables and properties built from records. Pointers stay valid for the
// arena's lifetime; clear() releases everything.
class Arena {
 public:
  amqp_table_entry_t* entries(std::size_t n);
  amqp_field_value_t* values(std::size_t n);
  amqp_bytes_t bytes(std::string_view s);
  void clear();

 private:
  std::deque<std::vector<amqp_table_entry_t>> entries_;
  std::deque<std::vector<amqp_field_value_t>> values_;
  std::deque<std::string> strings_;
};

// Field table <-> bytes (lossless for every rabbitmq-c field kind).
std::string encode_table(const amqp_table_t& table);
bool decode_table(std::string_view data, amqp_table_t& out, Arena& arena);

// Text form of a field value (strings as is, numbers in decimal, tables/arrays as JSON).
std::optional<std::string> field_text(const amqp_field_value_t& value);

// Fills attributes, headers and timestamp_ms of `record` from `props`.
void properties_to_record(const amqp_basic_properties_t& props, Record& record);

// Builds properties from `record` (inverse of properties_to_record). `extra_headers` are added to
// the headers table as UTF-8 strings, replacing existing entries of the same key.
void record_to_properties(const Record& record, amqp_basic_properties_t& props, Arena& arena,
                          const std::vector<std::pair<std::string, std::string>>& extra_headers);

// Value of a top-level string header, if present.
std::optional<std::string> find_string_header(const amqp_basic_properties_t& props,
                                              std::string_view key);

}  // namespace mqdr::rabbitmq
