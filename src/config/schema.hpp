#pragma once
// Internal to src/config: the key tables. One table per section names every key once, with its
// type, bounds, default and description; the same table drives parsing (reader.hpp), validation
// and the generated reference (reference.cpp). Nothing outside src/config includes this.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mqdr/config.hpp"

namespace mqdr::config::detail {

class Parser;

// How a value is read and what is checked on it. Lists are `Spec::list` of one of these.
enum class Type : std::uint8_t {
  string,          // any text
  name,            // [A-Za-z0-9][A-Za-z0-9_-]*, at most 64 characters (mirror, group, plan names)
  cluster,         // the name of a cluster under `clusters:`
  integer,         // whole number; Spec::min/max
  number,          // decimal number; Spec::min/max
  boolean,         // true | false
  duration,        // 500ms, 2s, 5m, 1h, 30d, 1m30s; Spec::min/max in milliseconds
  size,            // bytes: 1048576, 512KiB, 64MiB, 1GiB (also KB, MB, GB)
  choice,          // one of Spec::choices
  path,            // a path; relative ones are resolved against the config file's directory
  file,            // a path that must name a readable regular file
  private_file,    // same, and warned about when every user may read it (keys, credentials)
  executable,      // a path that must name an executable regular file (hooks)
  secret,          // text that is never shown in any message
  secret_file,     // a path; the file's content (trailing newlines trimmed) is the secret
  regex,           // ECMAScript regular expression matched against whole names
  queue_name,      // a RabbitMQ exchange or queue name (1 to 255 bytes)
  topic_name,      // a Kafka topic name ([A-Za-z0-9._-], at most 249 characters)
  rename,          // a Kafka topic rename template with {topic}, {source}, {target}
  url,             // http:// or https:// URL
  host_port,       // host:port or [v6]:port
  kafka_servers,   // "host:port,host:port" or a list of host:port
  nats_servers,    // list (or comma-separated string) of nats://, tls://, ws://, wss:// URLs
  amqp_uri,        // amqp[s]://[user[:password]@]host[:port][/vhost]
  map,             // mapping of names to scalar values
  section,         // a nested mapping with its own table (Spec::child)
  sections,        // a list of nested mappings (Spec::child)
  named_sections,  // a mapping of names to nested mappings (Spec::child)
};

// Which cluster kinds a key applies to (clusters, mirrors and backup plans have kinds).
using Kinds = unsigned;
inline constexpr Kinds kKafka = 1U << static_cast<unsigned>(ClusterKind::kafka);
inline constexpr Kinds kNats = 1U << static_cast<unsigned>(ClusterKind::nats);
inline constexpr Kinds kRabbit = 1U << static_cast<unsigned>(ClusterKind::rabbitmq);
inline constexpr Kinds kAllKinds = kKafka | kNats | kRabbit;
inline Kinds bit(ClusterKind k) { return 1U << static_cast<unsigned>(k); }

// The description of one key: everything the docs show and the generic checks use.
struct Spec {
  std::string_view name;
  Type type = Type::string;
  bool list = false;      // a YAML list of `type`
  bool required = false;  // a required list must also be non-empty
  Kinds kinds = kAllKinds;
  std::optional<double> min;  // integer, number, size; duration in ms
  bool min_exclusive = false;
  std::optional<double> max;
  std::vector<std::string_view> choices;  // Type::choice
  std::string_view def;    // default shown in the docs when the struct cannot tell it
  std::string_view equiv;  // keys with the same tag do the same job for different kinds
  std::string_view child;  // sections: title of the child table
  std::string_view doc;
};

// A YAML node with the key path and the position to report problems at.
struct Node {
  YAML::Node yaml;
  std::string path;
  YAML::Mark mark;
};

struct Entry {
  std::string key;
  YAML::Mark key_mark;
  Node value;
};
using Entries = std::vector<Entry>;

// Write access to a struct field, as function pointers so that tables are plain data.
template <class X>
struct Choice {
  void (*set)(X&, int index);
  int (*get)(const X&);
};
template <class X>
using Custom = void (*)(Parser&, const Spec&, const Node&, X&);

template <class X>
using Setter =
    std::variant<std::string& (*)(X&), std::filesystem::path& (*)(X&), int& (*)(X&),
                 std::int64_t& (*)(X&), double& (*)(X&), bool& (*)(X&), Duration& (*)(X&),
                 Secret& (*)(X&), std::vector<std::string>& (*)(X&),
                 std::map<std::string, std::string>& (*)(X&), Choice<X>, Custom<X>>;

template <class X>
struct Key {
  Spec spec;
  Setter<X> set;
};

template <class X>
struct Table {
  std::string_view title;  // "mirrors[]": the docs heading and how a section is referred to
  std::string_view noun;   // "mirror": used in messages ("... does not apply to a nats mirror")
  std::string_view doc;    // paragraph under the docs heading
  std::vector<Key<X>> keys;
  // Sections that have a kind (cluster, mirror, plan): find it before reading the keys, so that
  // keys of other kinds are refused with the right hint. nullopt = unknown; all keys are read.
  std::optional<ClusterKind> (*kind_of)(Parser&, const Entries&) = nullptr;
  // Checks that involve several keys of the section, after all keys were read.
  void (*finish)(Parser&, const Node&, const Entries&, X&) = nullptr;
};

const Table<Config>& root_table();
const Table<DaemonConfig>& daemon_table();
const Table<AdminConfig>& admin_table();
const Table<LogConfig>& log_table();
const Table<TlsConfig>& tls_table();
const Table<ClusterConfig>& cluster_table();
const Table<MirrorConfig>& mirror_table();
const Table<FailoverGroupConfig>& failover_table();
const Table<FailoverPair>& pair_table();
const Table<HealthConfig>& health_table();
const Table<ClientsConfig>& clients_table();
const Table<BackupPlanConfig>& backup_table();

// Reads the whole document into p.cfg (root must be a mapping).
void parse_root(Parser& p, const Node& root);
// Checks across sections: references, unique names, failover pairs; and warnings.
void check_references(Parser& p);

// Text for the docs and messages.
std::string_view type_name(Type type);
std::string format_size(std::int64_t bytes);

}  // namespace mqdr::config::detail
