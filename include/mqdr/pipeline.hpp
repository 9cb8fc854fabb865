#pragma once
// The broker-neutral movement of records from a Source to a Sink (DESIGN.md). Bounded memory
// (at most max_inflight records/bytes written but not yet confirmed), and a source position is
// committed only after the sink confirmed every record up to it: nothing acknowledged is lost.
// Single-threaded: run() is called on the worker's thread and owns the source and sink calls.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <stop_token>

#include "mqdr/sink.hpp"
#include "mqdr/source.hpp"
#include "mqdr/stats.hpp"

namespace mqdr {

struct PipelineOptions {
  std::size_t batch_max = 2000;                     // records per read
  std::size_t max_inflight_records = 50000;
  std::size_t max_inflight_bytes = 64u << 20;       // 64 MiB
  Duration read_wait{100};                          // wait for the first record of a read
  Duration poll_wait{50};                           // wait for confirmations when full
  Duration commit_interval{0};                      // 0 = commit whenever the prefix advances
  Duration lag_interval{std::chrono::seconds(1)};   // how often source.lag() is sampled
  Duration drain_timeout{std::chrono::seconds(10)}; // on stop: flush and commit within this
  std::uint64_t max_records = 0;                    // stop after this many (0 = unbounded)
  bool stop_when_idle = false;                      // stop at the first empty read (backup, restore)
};

class Pipeline {
 public:
  // `stats` may be null. Source and sink must be open.
  Pipeline(Source& source, Sink& sink, PipelineOptions options, WorkerStats* stats);

  // Moves records until `stop` is requested, a fatal error occurs, or an end condition of the
  // options is met. On any exit it flushes the sink and commits what was confirmed (within
  // drain_timeout). Returns the first non-ok status, or ok.
  Status run(std::stop_token stop);

  // One read-write-poll-commit round; exposed for tests. `idle` is set when nothing was read.
  Status step(bool& idle);

  // Flush the sink and commit every confirmed record (used on stop and by failover drains).
  Status drain(Duration deadline);

  std::uint64_t records_committed() const { return committed_; }
  std::size_t inflight() const { return inflight_.size(); }

 private:
  Status poll_and_commit(Duration wait);
  Status commit_prefix(bool force);

  Source& source_;
  Sink& sink_;
  PipelineOptions options_;
  WorkerStats* stats_;

  struct Inflight {
    Record record;
    bool confirmed = false;
  };
  std::deque<Inflight> inflight_;  // in read order; front = oldest unconfirmed-or-uncommitted
  std::uint64_t front_id_ = 0;     // id of inflight_.front()
  std::uint64_t next_id_ = 0;
  std::size_t inflight_bytes_ = 0;
  std::uint64_t committed_ = 0;
  std::uint64_t confirmations_ = 0;
  std::uint64_t read_total_ = 0;
  std::chrono::steady_clock::time_point last_commit_{};
  std::chrono::steady_clock::time_point last_lag_{};
  Batch batch_;
};

}  // namespace mqdr
