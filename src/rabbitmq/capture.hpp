#pragma once
// Capture queues of exchange mirroring: one durable queue per mirrored exchange on the source,
// `mqdr.capture.<mirror>.<exchange>`, bound so that it receives every message routed through
// the exchange (fanout: any key; topic: '#'; headers: an empty binding, which matches every
// message; direct: every routing key bound on the exchange, refreshed from the management API).
// Limits: x-max-length-bytes = capture_max_length_bytes with x-overflow=drop-head, so a stalled
// mirror can never push back on (nack) the application's publishers nor fill the source's disk;
// the alarm (capture_alarm_ratio) is raised well before the limit. x-single-active-consumer lets
// several mqdr processes stand by for the same capture queue without reordering.

#include <string>
#include <vector>

#include "mqdr/config.hpp"
#include "mqdr/status.hpp"
#include "rabbitmq/connection.hpp"
#include "rabbitmq/management.hpp"

namespace mqdr::rabbitmq {

std::string capture_queue_name(const std::string& mirror, const std::string& exchange);

struct CaptureState {
  std::string exchange;
  std::string queue;
  std::string type;                   // exchange type ("" when unknown: no management API)
  std::vector<std::string> keys;      // routing keys bound (direct exchanges)
};

// Declares and binds the capture queues of `mirror` on the source through `conn` (channel 3)
// and, when configured, the source's management API. Idempotent; refreshes direct-exchange
// keys. A missing exchange is reported as retry naming it.
Status ensure_capture(Connection& conn, Management& mgmt, const MirrorConfig& mirror,
                      std::vector<CaptureState>& out);

// The opposite of ensure_capture, for a mirror that stopped for good in this direction: each
// capture queue of `mirror` on the source is unbound from its exchange, then deleted when empty
// (kept, with its messages, otherwise). `out` gets per queue {"deleted": true} or
// {"kept_messages": N} or {"absent": true}.
Status release_capture(Connection& conn, Management& mgmt, const MirrorConfig& mirror,
                       nlohmann::json& out);

}  // namespace mqdr::rabbitmq
