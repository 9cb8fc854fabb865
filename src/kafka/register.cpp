#include "mqdr/kafka.hpp"

#include "kafka/ops.hpp"
#include "kafka/probe.hpp"
#include "kafka/worker.hpp"

namespace mqdr::kafka {

void register_kind(BrokerRegistry& registry) {
  BrokerKind kind;
  kind.make_mirror = [](const MirrorContext& ctx) -> WorkerPtr {
    return std::make_unique<MirrorWorker>(ctx);
  };
  kind.make_probe = [](const ClusterConfig& cluster) -> ProbePtr {
    return std::make_unique<KafkaProbe>(cluster);
  };
  kind.make_mirror_ops = [](const MirrorContext& ctx) -> MirrorOpsPtr {
    return std::make_unique<KafkaMirrorOps>(ctx);
  };
  registry.add(ClusterKind::kafka, std::move(kind));
}

}  // namespace mqdr::kafka
