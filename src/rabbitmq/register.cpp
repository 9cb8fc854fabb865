#include "mqdr/rabbitmq.hpp"

#include "rabbitmq/ops.hpp"
#include "rabbitmq/worker.hpp"

namespace mqdr::rabbitmq {

void register_kind(BrokerRegistry& registry) {
  BrokerKind kind;
  kind.make_mirror = [](const MirrorContext& ctx) -> WorkerPtr {
    return std::make_unique<MirrorWorker>(ctx);
  };
  kind.make_probe = [](const ClusterConfig& cluster) { return make_probe(cluster); };
  kind.make_mirror_ops = [](const MirrorContext& ctx) { return make_mirror_ops(ctx); };
  registry.add(ClusterKind::rabbitmq, std::move(kind));
}

}  // namespace mqdr::rabbitmq
