#pragma once
// The per-kind makers of readers and restore targets (src/backup/{kafka,nats,rabbitmq}.cpp);
// mqdr::backup::make_reader()/make_target() dispatch on the cluster's kind.

#include <memory>

#include "mqdr/backup.hpp"

namespace mqdr::backup {

std::unique_ptr<BackupReader> make_kafka_reader(const BackupPlanConfig& plan, const ClusterConfig& cluster);
std::unique_ptr<RestoreTarget> make_kafka_target(const ClusterConfig& cluster);
std::unique_ptr<BackupReader> make_nats_reader(const BackupPlanConfig& plan, const ClusterConfig& cluster);
std::unique_ptr<RestoreTarget> make_nats_target(const ClusterConfig& cluster);
std::unique_ptr<BackupReader> make_rabbitmq_reader(const BackupPlanConfig& plan, const ClusterConfig& cluster);
std::unique_ptr<RestoreTarget> make_rabbitmq_target(const ClusterConfig& cluster);

}  // namespace mqdr::backup
