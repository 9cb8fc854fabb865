#pragma once
// The broker-neutral record every source reads and every sink writes (DESIGN.md).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mqdr {

struct Header {
  std::string key;
  std::optional<std::string> value;  // Kafka allows null header values
  bool operator==(const Header&) const = default;
};

struct Record {
  // Origin: where the record came from.
  std::string item;          // topic, stream, exchange or queue
  std::int32_t partition = 0;  // Kafka partition; 0 for the other kinds
  std::int64_t position = -1;  // Kafka offset, JetStream stream sequence, AMQP delivery tag

  // Content.
  std::optional<std::string> key;    // Kafka key (nullopt = null key); NATS subject; AMQP routing key
  std::optional<std::string> value;  // payload; nullopt = Kafka tombstone
  std::vector<Header> headers;       // in order; duplicate keys allowed
  std::int64_t timestamp_ms = 0;     // Kafka CreateTime, JetStream time, AMQP timestamp (ms)
  // Broker-specific metadata kept byte for byte (AMQP basic properties, ...): name -> value.
  std::vector<std::pair<std::string, std::string>> attributes;

  // Private to the source that produced the record (e.g. an AMQP channel epoch, a NATS reply
  // subject index); sinks and the pipeline never interpret it.
  std::uint64_t source_token = 0;
  std::string source_reply;  // e.g. the JetStream ack subject

  std::size_t size_bytes() const {
    std::size_t n = item.size() + (key ? key->size() : 0) + (value ? value->size() : 0);
    for (const auto& h : headers) n += h.key.size() + (h.value ? h.value->size() : 0);
    for (const auto& a : attributes) n += a.first.size() + a.second.size();
    return n;
  }
  // Content equality (what a mirror must preserve); origin fields and tokens are not compared.
  bool same_content(const Record& o) const {
    return key == o.key && value == o.value && headers == o.headers &&
           timestamp_ms == o.timestamp_ms && attributes == o.attributes;
  }
};

using Batch = std::vector<Record>;

}  // namespace mqdr
