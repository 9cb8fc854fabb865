#pragma once
// Drill markers of a RabbitMQ mirror (mqdr/broker.hpp DrillMarkers): persistent messages
// published to the fanout exchange `mqdr.drill`, which routes them to the queue `mqdr.drill` on
// the same side and, on the source, into the mirror's capture queue of its first exchange, so
// that the mirror carries them to the target's `mqdr.drill` exchange (AmqpSource keeps their
// exchange). The drill's consumer takes them from the `mqdr.drill` queue; the standby's copy of
// that queue is trimmed at promotion like every mirrored queue.

#include "mqdr/broker.hpp"

namespace mqdr::rabbitmq {

inline constexpr const char* kDrillExchange = "mqdr.drill";
inline constexpr const char* kDrillQueue = "mqdr.drill";

// The exchanges whose queues standby trimming covers: the mirrored ones and the drill's.
std::vector<std::string> trimmed_exchanges(const std::vector<std::string>& mirrored);

Status drill_prepare(const MirrorContext& ctx, Duration deadline);
Status drill_write(const MirrorContext& ctx, DrillMarkers& markers, int count, int consume,
                   Duration deadline);
Status drill_check(const MirrorContext& ctx, const DrillMarkers& markers, DrillCheck& out,
                   Duration deadline);

}  // namespace mqdr::rabbitmq
