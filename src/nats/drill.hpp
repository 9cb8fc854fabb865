#pragma once
// Drill markers of a NATS mirror (mqdr/broker.hpp DrillMarkers): messages on the subject
// `mqdr.drill.<drill id>` of the stream MQDR_DRILL, which every mirror selects (StreamSelector);
// the drill's consumer is a durable pull consumer of that name, whose twin the mirror's consumer
// sync keeps on the target (ConsumerSync). Called by NatsMirrorOps with its open connections.

#include <nats/nats.h>

#include "mqdr/broker.hpp"

namespace mqdr::nats {

inline constexpr const char* kDrillStream = "MQDR_DRILL";
inline constexpr const char* kDrillSubjects = "mqdr.drill.>";

struct DrillSide {
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  const ClusterConfig* cluster = nullptr;
};

// MQDR_DRILL exists on the source (created when missing) and, once the mirror picked it up,
// on the target; waits for that within the deadline.
Status drill_prepare(const DrillSide& source, const DrillSide& target, const std::string& mirror,
                     Duration deadline);
Status drill_write(const DrillSide& source, DrillMarkers& markers, int count, int consume,
                   Duration deadline);
Status drill_check(const DrillSide& target, const DrillMarkers& markers, DrillCheck& out,
                   Duration deadline);

}  // namespace mqdr::nats
