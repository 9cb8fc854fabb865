#pragma once
// A long-running unit of work owned by the supervisor: one per mirror and per backup plan.
// Lifecycle: the supervisor makes a worker with its factory, calls run() on a thread of its own,
// and on failure destroys it and makes a fresh one after an exponential backoff.

#include <functional>
#include <memory>
#include <stop_token>

#include "mqdr/status.hpp"

namespace mqdr {

class Worker {
 public:
  virtual ~Worker() = default;

  // Runs until `stop` is requested (then drains, commits what is safe and returns ok) or until
  // it fails (returns a non-ok Status or throws). Must return within a bounded time after
  // `stop` is requested (the daemon's shutdown_timeout). Must not busy-loop while a broker is down.
  virtual Status run(std::stop_token stop) = 0;
};

using WorkerPtr = std::unique_ptr<Worker>;
using WorkerFactory = std::function<WorkerPtr()>;

}  // namespace mqdr
