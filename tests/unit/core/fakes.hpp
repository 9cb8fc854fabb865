#pragma once
// Fakes of mqdr's own Source and Sink interfaces for pipeline tests (no broker involved).

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>

#include "mqdr/sink.hpp"
#include "mqdr/source.hpp"

namespace mqdr::test {

// Serves `total` records on items "t0".."t{items-1}", positions increasing per item.
class FakeSource : public Source {
 public:
  FakeSource(std::int64_t total, int items = 1) : total_(total), items_(items) {}
  Status open() override { return Status::ok(); }
  Status read(Batch& out, std::size_t max, Duration) override {
    if (fail_read_at_ >= 0 && produced_ >= fail_read_at_) return Status::retry("read failed");
    for (std::size_t i = 0; i < max && produced_ < total_; ++i, ++produced_) {
      Record r;
      r.item = std::string("t") + std::to_string(produced_ % items_);
      r.position = produced_ / items_;
      r.value = std::string("v") + std::to_string(produced_);
      out.push_back(std::move(r));
    }
    return Status::ok();
  }
  Status commit(std::span<const Record> confirmed) override {
    for (const auto& r : confirmed) {
      auto& c = committed_[r.item];
      if (r.position != c) out_of_order_ = true;  // must come in read order, no gaps
      c = r.position + 1;
      commits_.push_back(r.value.value_or(""));
    }
    ++commit_calls_;
    return Status::ok();
  }
  Lag lag() override { return {total_ - produced_, 0}; }
  void close() override {}

  std::int64_t total_;
  int items_;
  std::int64_t produced_ = 0;
  std::int64_t fail_read_at_ = -1;
  std::map<std::string, std::int64_t> committed_;  // next position per item
  std::vector<std::string> commits_;
  int commit_calls_ = 0;
  bool out_of_order_ = false;
};

// Accepts writes; confirms them in a shuffled order (or holds them), optionally failing one.
class FakeSink : public Sink {
 public:
  Status open() override { return Status::ok(); }
  Status write(std::span<const Record> records, std::uint64_t first_id) override {
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (fatal_on_value_ && records[i].value == *fatal_on_value_) {
        return Status::fatal("rejected " + *records[i].value);
      }
      pending_.push_back(first_id + i);
      written_.push_back(records[i].value.value_or(""));
    }
    return Status::ok();
  }
  Status poll(Duration, const std::function<void(std::uint64_t)>& confirmed) override {
    if (hold_) return Status::ok();
    std::shuffle(pending_.begin(), pending_.end(), rng_);
    // Confirm all but (sometimes) the oldest, to exercise out-of-order confirmation.
    std::vector<std::uint64_t> keep;
    std::uint64_t oldest = pending_.empty() ? 0 : *std::min_element(pending_.begin(), pending_.end());
    for (auto id : pending_) {
      if (delay_oldest_ && id == oldest && (rng_() % 2 == 0)) {
        keep.push_back(id);
      } else {
        confirmed(id);
        confirmed_.insert(id);
      }
    }
    pending_ = keep;
    return Status::ok();
  }
  Status flush(Duration) override {
    if (hold_) return Status::retry("target unavailable");
    return Status::ok();
  }
  void close() override {}

  std::vector<std::uint64_t> pending_;
  std::set<std::uint64_t> confirmed_;
  std::vector<std::string> written_;
  std::optional<std::string> fatal_on_value_;
  bool hold_ = false;
  bool delay_oldest_ = true;
  std::mt19937 rng_{42};
};

}  // namespace mqdr::test
