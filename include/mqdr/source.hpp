#pragma once
// Where records come from: a broker (mirror, backup) or backup files (restore).
// Lifecycle: open() once, then read()/commit() from ONE thread (the pipeline's), then close().

#include <cstddef>
#include <memory>
#include <span>

#include "mqdr/config.hpp"
#include "mqdr/record.hpp"
#include "mqdr/status.hpp"

namespace mqdr {

struct Lag {
  std::int64_t records = -1;  // -1 = unknown
  double seconds = -1;        // age of the oldest record not yet mirrored; -1 = unknown
};

class Source {
 public:
  virtual ~Source() = default;

  // Connects and positions after the last committed position. Retryable problems (broker down)
  // return retry; misconfiguration returns fatal.
  virtual Status open() = 0;

  // Appends up to `max` records to `out`, waiting at most `wait` for the first one. An empty
  // result with ok() means "nothing now". Records come in source order per item/partition.
  virtual Status read(Batch& out, std::size_t max, Duration wait) = 0;

  // The sink confirmed every record in `confirmed` and every record read before them: their
  // positions may now be committed/acked on the source. Called in read order.
  virtual Status commit(std::span<const Record> confirmed) = 0;

  // Best-effort current lag of this source (mirrored side vs. head); cheap, may be cached.
  virtual Lag lag() { return {}; }

  virtual void close() = 0;
};

using SourcePtr = std::unique_ptr<Source>;

}  // namespace mqdr
