#include "failover/clients.hpp"

#include <cctype>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "failover/state_store.hpp"
#include "mqdr/failover_machine.hpp"

namespace mqdr::failover {

std::string strip_userinfo(const std::string& uri) {
  auto scheme = uri.find("://");
  if (scheme == std::string::npos) return uri;
  auto auth_start = scheme + 3;
  auto auth_end = uri.find_first_of("/?#", auth_start);
  if (auth_end == std::string::npos) auth_end = uri.size();
  auto at = uri.rfind('@', auth_end == 0 ? 0 : auth_end - 1);
  if (at == std::string::npos || at < auth_start) return uri;
  return uri.substr(0, auth_start) + uri.substr(at + 1);
}

namespace {

// The clients-file entry of one pair: which cluster is active and how to reach it.
const char* kind_name(ClusterKind kind) {
  switch (kind) {
    case ClusterKind::kafka: return "kafka";
    case ClusterKind::nats: return "nats";
    case ClusterKind::rabbitmq: return "rabbitmq";
  }
  return "unknown";
}

nlohmann::json cluster_entry(const std::string& name, const ClusterConfig& active) {
  nlohmann::json e = {{"kind", kind_name(active.kind)}, {"active", name}};
  switch (active.kind) {
    case ClusterKind::kafka:
      e["bootstrap_servers"] = active.kafka.bootstrap_servers;
      break;
    case ClusterKind::nats: {
      nlohmann::json servers = nlohmann::json::array();
      for (const auto& s : active.nats.servers) servers.push_back(strip_userinfo(s));
      e["servers"] = servers;
      if (!active.nats.domain.empty()) e["domain"] = active.nats.domain;
      break;
    }
    case ClusterKind::rabbitmq:
      e["uri"] = strip_userinfo(active.rabbitmq.uri);
      if (!active.rabbitmq.management_uri.empty()) {
        e["management_uri"] = strip_userinfo(active.rabbitmq.management_uri);
      }
      break;
  }
  return e;
}

nlohmann::json document(const Config& config, const FailoverGroupConfig& group,
                        const ClientsView& view) {
  nlohmann::json clusters = nlohmann::json::object();
  for (const auto& pair : group.pairs) {
    const auto& name = view.standby_active ? pair.standby : pair.primary;
    auto it = config.clusters.find(name);
    const ClusterConfig* active = it == config.clusters.end() ? nullptr : &it->second;
    if (!active) {
      throw std::runtime_error(
          fmt::format("failover group {}: unknown cluster '{}'", group.name, name));
    }
    clusters[pair.primary] = cluster_entry(name, *active);
  }
  return {{"group", group.name},
          {"epoch", view.epoch},
          {"state", view.state},
          {"active", view.standby_active ? "standby" : "primary"},
          {"switched_at", format_time(view.switched_at)},
          {"clusters", clusters}};
}

std::string env_name(const std::string& text) {
  std::string out;
  for (char c : text) {
    out += std::isalnum(static_cast<unsigned char>(c))
               ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
               : '_';
  }
  return out;
}

// Plain when it cannot be misread by sh, systemd or docker; otherwise single-quoted for sh.
std::string env_value(const std::string& v) {
  bool plain = !v.empty();
  for (char c : v) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("_./:,@%+=-[]").find(c) != std::string_view::npos)) {
      plain = false;
    }
  }
  if (plain) return v;
  std::string out = "'";
  for (char c : v) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (const auto& item : v) {
      if (!out.empty()) out += ",";
      out += scalar_text(item);
    }
    return out;
  }
  return v.dump();
}

std::string render_env(const nlohmann::json& doc) {
  std::string out = "# written by mqdr on every switch; do not edit\n";
  for (const char* key : {"group", "epoch", "state", "active", "switched_at"}) {
    out += fmt::format("MQDR_{}={}\n", env_name(key), env_value(scalar_text(doc[key])));
  }
  for (const auto& [name, entry] : doc["clusters"].items()) {
    for (const auto& [key, value] : entry.items()) {
      out += fmt::format("MQDR_{}_{}={}\n", env_name(name), env_name(key),
                         env_value(scalar_text(value)));
    }
  }
  return out;
}

// Block YAML; strings as JSON strings, which YAML reads as double-quoted scalars.
void yaml_lines(const nlohmann::json& v, int indent, std::string& out) {
  std::string pad(static_cast<std::size_t>(indent), ' ');
  for (const auto& [key, value] : v.items()) {
    auto k = nlohmann::json(key).dump();
    if (value.is_object()) {
      out += fmt::format("{}{}:\n", pad, k);
      yaml_lines(value, indent + 2, out);
    } else if (value.is_array()) {
      out += fmt::format("{}{}:{}\n", pad, k, value.empty() ? " []" : "");
      for (const auto& item : value) out += fmt::format("{}  - {}\n", pad, item.dump());
    } else {
      out += fmt::format("{}{}: {}\n", pad, k, value.dump());
    }
  }
}

}  // namespace

std::string render_clients(const Config& config, const FailoverGroupConfig& group,
                           const ClientsView& view) {
  auto doc = document(config, group, view);
  switch (group.clients.format) {
    case ClientsFormat::json: return doc.dump(2) + "\n";
    case ClientsFormat::env: return render_env(doc);
    case ClientsFormat::yaml: {
      std::string out = "# written by mqdr on every switch; do not edit\n";
      yaml_lines(doc, 0, out);
      return out;
    }
  }
  return doc.dump(2) + "\n";
}

void write_clients_file(const Config& config, const FailoverGroupConfig& group,
                        const ClientsView& view) {
  const auto& file = group.clients.file;
  if (file.empty()) return;
  auto content = render_clients(config, group, view);
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  if (ec) {
    throw std::runtime_error(fmt::format("cannot create directory of clients file {}: {}",
                                         file.string(), ec.message()));
  }
  write_file_atomic(file, content, 0644);
}

}  // namespace mqdr::failover
