#include "mqdr/pipeline.hpp"

#include <algorithm>
#include <thread>

namespace mqdr {

using Clock = std::chrono::steady_clock;

Pipeline::Pipeline(Source& source, Sink& sink, PipelineOptions options, WorkerStats* stats)
    : source_(source), sink_(sink), options_(options), stats_(stats) {}

Status Pipeline::run(std::stop_token stop) {
  Status result;
  bool idle = false;
  while (!stop.stop_requested()) {
    result = step(idle);
    if (!result.is_ok()) break;
    if (options_.stop_when_idle && idle && inflight_.empty()) break;
    if (options_.max_records != 0 && read_total_ >= options_.max_records) break;
  }
  // Whatever happened, commit what the target already confirmed: that is never lost and
  // shortens the replay after a restart.
  Status drained = drain(options_.drain_timeout);
  return result.is_ok() ? drained : result;
}

Status Pipeline::step(bool& idle) {
  idle = false;
  const bool full = inflight_.size() >= options_.max_inflight_records ||
                    inflight_bytes_ >= options_.max_inflight_bytes;
  if (full) {
    // Backpressure: stop reading until the target confirms.
    return poll_and_commit(options_.poll_wait);
  }

  std::size_t room = options_.max_inflight_records - inflight_.size();
  std::size_t max = std::min(options_.batch_max, room);
  if (options_.max_records != 0) {
    max = std::min<std::uint64_t>(max, options_.max_records - read_total_);
  }
  batch_.clear();
  // With nothing in flight there is nothing to poll for, so the read may wait; otherwise keep
  // the wait short so confirmations keep flowing.
  Duration wait = inflight_.empty() ? options_.read_wait : Duration(0);
  Status st = source_.read(batch_, max, wait);
  if (!st.is_ok()) return st;

  if (batch_.empty()) {
    idle = true;
  } else {
    const std::uint64_t first = next_id_;
    st = sink_.write(batch_, first);
    // Records count as in flight even when write failed: nothing behind them may be committed.
    for (auto& r : batch_) {
      inflight_bytes_ += r.size_bytes();
      inflight_.push_back(Inflight{std::move(r), false});
    }
    next_id_ += batch_.size();
    read_total_ += batch_.size();
    if (!st.is_ok()) return st;
  }

  if (stats_ != nullptr && Clock::now() - last_lag_ >= options_.lag_interval) {
    last_lag_ = Clock::now();
    Lag lag = source_.lag();
    stats_->set_lag(lag.records, lag.seconds);
  }
  // When nothing new came in, wait a little for confirmations instead of spinning on empty
  // reads and polls while records are in flight.
  return poll_and_commit(idle ? options_.poll_wait : Duration(0));
}

Status Pipeline::poll_and_commit(Duration wait) {
  if (inflight_.empty()) {
    if (wait.count() > 0) std::this_thread::sleep_for(std::min(wait, Duration(10)));
    return Status::ok();
  }
  Status st = sink_.poll(wait, [this](std::uint64_t id) {
    if (id < front_id_ || id >= next_id_) return;  // already committed or unknown: ignore
    auto& slot = inflight_[id - front_id_];
    if (!slot.confirmed) ++confirmations_;
    slot.confirmed = true;
  });
  if (!st.is_ok()) {
    // Commit what was confirmed before the failure, then report it.
    (void)commit_prefix(true);
    return st;
  }
  return commit_prefix(false);
}

Status Pipeline::commit_prefix(bool force) {
  std::size_t n = 0;
  while (n < inflight_.size() && inflight_[n].confirmed) ++n;
  if (n == 0) return Status::ok();
  const auto now = Clock::now();
  if (!force && options_.commit_interval.count() > 0 && n < inflight_.size() &&
      now - last_commit_ < options_.commit_interval) {
    return Status::ok();
  }

  std::vector<Record> done;
  done.reserve(n);
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < n; ++i) {
    bytes += inflight_[i].record.size_bytes();
    done.push_back(std::move(inflight_[i].record));
  }
  // Count as mirrored once confirmed by the target, even if the source commit fails below:
  // the records are on the target; a failed commit only means they may be copied again.
  inflight_.erase(inflight_.begin(), inflight_.begin() + static_cast<std::ptrdiff_t>(n));
  inflight_bytes_ -= std::min<std::size_t>(inflight_bytes_, bytes);
  front_id_ += n;
  if (stats_ != nullptr) stats_->add_records(n, bytes);
  last_commit_ = now;

  Status st = source_.commit(done);
  if (st.is_ok()) committed_ += n;
  return st;
}

Status Pipeline::drain(Duration deadline) {
  if (inflight_.empty()) return Status::ok();
  const auto until = Clock::now() + deadline;
  // After flush() everything written is either confirmed or failed, so collect confirmations
  // until a poll brings no progress (or the deadline passes), then commit the prefix.
  Status flushed = sink_.flush(deadline);
  while (!inflight_.empty()) {
    const std::uint64_t before = confirmations_;
    Status st = poll_and_commit(Duration(flushed.is_ok() ? 0 : 20));
    if (!st.is_ok()) return st;
    if (confirmations_ == before || Clock::now() >= until) break;
  }
  Status st = commit_prefix(true);
  if (!flushed.is_ok()) return flushed;
  if (!inflight_.empty()) {
    return Status::retry("drain ended with " + std::to_string(inflight_.size()) +
                         " records not confirmed by the target");
  }
  return st;
}

}  // namespace mqdr
