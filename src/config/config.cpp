#include "mqdr/config.hpp"

#include <fmt/format.h>

#include "mqdr/config_loader.hpp"

namespace mqdr {

const char* to_string(ClusterKind kind) {
  switch (kind) {
    case ClusterKind::kafka:
      return "kafka";
    case ClusterKind::nats:
      return "nats";
    case ClusterKind::rabbitmq:
      return "rabbitmq";
  }
  return "unknown";
}

const ClusterConfig* Config::cluster(const std::string& name) const {
  auto it = clusters.find(name);
  return it == clusters.end() ? nullptr : &it->second;
}

const MirrorConfig* Config::mirror(const std::string& name) const {
  for (const auto& m : mirrors) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

const FailoverGroupConfig* Config::group(const std::string& name) const {
  for (const auto& g : failover) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

const BackupPlanConfig* Config::plan(const std::string& name) const {
  for (const auto& p : backups) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

namespace {

bool same_cluster(const Config& ca, const std::string& a, const Config& cb, const std::string& b) {
  const ClusterConfig* x = ca.cluster(a);
  const ClusterConfig* y = cb.cluster(b);
  if (x == nullptr || y == nullptr) return x == y;
  return *x == *y;  // every setting, secrets and TLS files included
}

}  // namespace

bool same_settings(const MirrorConfig& a, const MirrorConfig& b, const Config& ca,
                   const Config& cb) {
  return a == b && same_cluster(ca, a.source, cb, b.source) &&
         same_cluster(ca, a.target, cb, b.target);
}

bool same_settings(const BackupPlanConfig& a, const BackupPlanConfig& b, const Config& ca,
                   const Config& cb) {
  return a == b && same_cluster(ca, a.cluster, cb, b.cluster);
}

namespace config {

std::string Problem::str() const {
  std::string out = file;
  if (line > 0) out += fmt::format(":{}:{}", line, column);
  out += ": ";
  if (!path.empty()) out += path + ": ";
  if (warning) out += "warning: ";
  out += message;
  return out;
}

namespace {

std::string join(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty()) out += '\n';
    out += p.str();
  }
  return out.empty() ? std::string("invalid configuration") : out;
}

}  // namespace

Error::Error(std::vector<Problem> problems)
    : std::runtime_error(join(problems)), problems_(std::move(problems)) {}

}  // namespace config
}  // namespace mqdr
