#pragma once
// Durable consumer positions for failover: for each durable consumer on a source stream that
// matches `consumers`, a twin with the same name and config on the target stream, positioned
// right after the translated ack floor (source sequence -> target sequence, read from the
// Mqdr-Source-Sequence header in relay mode or Nats-Stream-Source in native mode). A client that
// binds to the same durable after a failover continues without losing a message; it may see
// again what was acked on the source within the last sync interval. The twin is recreated when
// the translated floor moves (a consumer's start cannot be changed in place).
// Stateless between calls; called from the worker's thread or the failover driver's.

#include <nats/nats.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "mqdr/status.hpp"

namespace mqdr::nats {

// Source sequence a target message was copied from: Mqdr-Source-Sequence (relay) or the
// sequence in Nats-Stream-Source (native). nullopt when it carries neither.
std::optional<std::uint64_t> source_sequence_of(natsMsg* msg, bool native);

// Largest target sequence whose source sequence is <= `source_seq` (0 when none). The target
// holds source messages in source order, so a binary search over its sequences finds it.
std::optional<std::uint64_t> translate_sequence(jsCtx* target, const std::string& stream,
                                                std::uint64_t source_seq, bool native,
                                                std::string& error);

class ConsumerSync {
 public:
  // `skip_prefix`: consumers of mqdr itself (its relay consumers) are never copied.
  ConsumerSync(jsCtx* source, jsCtx* target, const std::vector<std::string>& patterns,
               std::string skip_prefix);

  // Syncs the twins of one stream; returns "" or what went wrong (no secrets).
  std::string sync_stream(const std::string& stream, bool native);

  // Number of twins created or moved by the calls so far.
  int moved() const { return moved_; }

 private:
  jsCtx* source_;
  jsCtx* target_;
  std::vector<std::regex> patterns_;
  std::string skip_prefix_;
  int moved_ = 0;
};

// Native mode keeps each stream's source subjects in the state dir so that promote() can give
// them to the target stream even when the source is down.
void save_native_subjects(const std::filesystem::path& state_dir, const std::string& stream,
                          const std::vector<std::string>& subjects);
std::optional<std::vector<std::string>> load_native_subjects(const std::filesystem::path& state_dir,
                                                             const std::string& stream);

}  // namespace mqdr::nats
