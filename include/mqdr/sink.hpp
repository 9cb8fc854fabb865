#pragma once
// Where records go: a broker (mirror, restore) or backup files (backup).
// Lifecycle: open() once, then write()/poll() from ONE thread (the pipeline's), then close().
// Implementations may use client-library threads internally (delivery reports, async acks) and
// hand their results to poll().

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "mqdr/config.hpp"
#include "mqdr/record.hpp"
#include "mqdr/status.hpp"

namespace mqdr {

class Sink {
 public:
  virtual ~Sink() = default;

  virtual Status open() = 0;

  // Starts writing `records`; record i gets the id `first_id + i`. May block briefly for
  // backpressure. Transient failures are retried inside the sink (never reordered within an
  // item/partition); only a record the target rejects for good is reported, as fatal, naming it.
  virtual Status write(std::span<const Record> records, std::uint64_t first_id) = 0;

  // Reports ids the target confirmed durably (any order), waiting at most `wait` for one.
  virtual Status poll(Duration wait, const std::function<void(std::uint64_t id)>& confirmed) = 0;

  // Waits until everything written is confirmed or failed, at most `deadline`.
  virtual Status flush(Duration deadline) = 0;

  virtual void close() = 0;
};

using SinkPtr = std::unique_ptr<Sink>;

}  // namespace mqdr
