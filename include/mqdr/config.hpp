#pragma once
// The whole mqdr topology as plain structs (SPEC.md "Configuration"). Produced by
// mqdr::config::load() after one validation pass; every other area only reads these, and may
// rely on what the loader checked: names exist and have the right kind, bounds hold, regexes
// compile, and the files mqdr reads at start (keys, certificates, secret files, hooks) existed
// and were readable at load time.
// Durations are milliseconds. Secrets are mqdr::Secret and never print their value. Every path
// is absolute (relative ones in the file are resolved against the config file's directory).
// The keys, defaults and bounds are documented in docs/configuration.md (generated from the key
// tables in src/config/schema.cpp). operator== compares every field, secrets included.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mqdr/secret.hpp"

namespace mqdr {

using Duration = std::chrono::milliseconds;

enum class ClusterKind { kafka, nats, rabbitmq };
const char* to_string(ClusterKind kind);

enum class LogFormat { text, json };

struct TlsConfig {
  bool enabled = false;            // true with a `tls:` section (unless `enabled: false`), an
                                   // amqps:// uri, a tls:// or wss:// NATS server, or a Kafka
                                   // security.protocol of SSL / SASL_SSL
  std::string ca_file;             // PEM bundle; empty = system default
  std::string cert_file;           // client certificate (PEM)
  std::string key_file;            // client key (PEM)
  Secret key_password;             // tls.key_password / key_password_file
  bool verify = true;              // verify the server certificate chain
  bool verify_hostname = true;     // check the server name against the certificate
  std::string server_name;         // SNI / expected name; empty = host from the address

  bool operator==(const TlsConfig&) const = default;
};

struct AdminConfig {
  std::string listen = "127.0.0.1:9780";  // host:port
  std::string token_file;                 // bearer token for POSTs; empty = POSTs refused
  Secret token;                           // read from token_file (or admin.token / ${ENV})
  TlsConfig tls;                          // optional TLS for the listener (cert_file/key_file)

  bool operator==(const AdminConfig&) const = default;
};

struct LogConfig {
  std::string level = "info";  // trace|debug|info|warn|error|critical|off
  LogFormat format = LogFormat::text;

  bool operator==(const LogConfig&) const = default;
};

struct DaemonConfig {
  std::filesystem::path state_dir = "/var/lib/mqdr";
  AdminConfig admin;
  LogConfig log;
  Duration shutdown_timeout{std::chrono::seconds(30)};  // SIGTERM: workers drain within this

  bool operator==(const DaemonConfig&) const = default;
};

struct KafkaClusterConfig {
  std::string bootstrap_servers;                  // "host:port,host:port"
  std::map<std::string, std::string> properties;  // librdkafka properties, unchanged; a
                                                  // `NAME_file: PATH` key arrives as NAME with
                                                  // the file's content
  std::vector<std::string> secret_properties;     // names in `properties` that hold secrets
                                                  // (sorted): never log their values

  bool operator==(const KafkaClusterConfig&) const = default;
};

struct NatsClusterConfig {
  std::vector<std::string> servers;  // nats://host:port
  std::string credentials_file;      // .creds (JWT + NKey seed)
  std::string nkey_seed_file;        // NKey seed file
  Secret token;                      // token / token_file
  std::string user;                  // user + password
  Secret password;                   // password / password_file
  std::string domain;                // JetStream domain of this cluster (optional)
  std::string api_prefix;            // JetStream API prefix override (optional)

  bool operator==(const NatsClusterConfig&) const = default;
};

struct RabbitClusterConfig {
  std::string uri;             // amqp[s]://user[:password]@host:port/vhost, password stripped
  std::string user;            // from uri or `user`; "guest" when neither gives one
  Secret password;             // from uri, password / password_file; "guest" with user guest
  std::string host;            // parsed from uri
  int port = 5672;             // parsed from uri (5671 for amqps)
  std::string vhost = "/";     // parsed from uri, percent-decoded
  std::string management_uri;  // http[s]://host:port, empty = no management API

  bool operator==(const RabbitClusterConfig&) const = default;
};

struct ClusterConfig {
  std::string name;
  ClusterKind kind = ClusterKind::kafka;
  KafkaClusterConfig kafka;     // meaningful when kind == kafka
  NatsClusterConfig nats;       // meaningful when kind == nats
  RabbitClusterConfig rabbitmq; // meaningful when kind == rabbitmq
  TlsConfig tls;

  bool operator==(const ClusterConfig&) const = default;
};

enum class Delivery { at_least_once, exactly_once };
enum class NatsMode { relay, native };

struct KafkaMirrorConfig {
  std::vector<std::string> topics;          // regexes, whole-name match
  std::vector<std::string> exclude_topics;  // regexes, whole-name match
  std::string rename = "{topic}";           // '{topic}' or '{source}.{topic}' (any text around)
  bool sync_topic_configs = true;
  std::vector<std::string> groups;          // regexes of consumer groups to translate
  Delivery delivery = Delivery::at_least_once;
  Duration refresh_interval{std::chrono::seconds(30)};    // topic/partition discovery
  Duration group_sync_interval{std::chrono::seconds(5)};  // translated offset commits
  Duration heartbeat_interval{std::chrono::seconds(3)};   // 0 = no heartbeats
  std::string dead_letter_topic;            // on the target; empty = stop on rejected records
  std::map<std::string, std::string> consumer_properties;  // extra librdkafka props
  std::map<std::string, std::string> producer_properties;

  bool operator==(const KafkaMirrorConfig&) const = default;
};

struct NatsMirrorConfig {
  std::vector<std::string> streams;    // names or regexes
  NatsMode mode = NatsMode::relay;
  std::vector<std::string> consumers;  // regexes of durable consumer names
  Duration refresh_interval{std::chrono::seconds(30)};
  Duration consumer_sync_interval{std::chrono::seconds(5)};
  int batch = 256;                     // pull fetch batch size
  int max_inflight = 4096;             // async publishes in flight

  bool operator==(const NatsMirrorConfig&) const = default;
};

struct RabbitMirrorConfig {
  std::vector<std::string> exchanges;   // exchange mirroring (capture queues)
  std::vector<std::string> queues;      // shovel: messages moved out of these queues
  std::string shovel_exchange;          // publish shovelled messages here ('' = same-named queue)
  bool sync_definitions = true;
  int prefetch = 1000;
  std::int64_t capture_max_length_bytes = 1LL << 30;  // capture queue limit per exchange
  double capture_alarm_ratio = 0.8;                   // alarm when this full
  std::int64_t standby_margin = 1000;  // messages kept beyond the primary's depth at promotion
  Duration refresh_interval{std::chrono::seconds(30)};

  bool operator==(const RabbitMirrorConfig&) const = default;
};

struct MirrorConfig {
  std::string name;
  std::string source;  // cluster name
  std::string target;  // cluster name
  ClusterKind kind = ClusterKind::kafka;  // of source and target (validated equal)
  // Only the member for `kind` below is meaningful.
  KafkaMirrorConfig kafka;
  NatsMirrorConfig nats;
  RabbitMirrorConfig rabbitmq;

  bool operator==(const MirrorConfig&) const = default;
};

struct HealthConfig {
  Duration interval{std::chrono::seconds(1)};
  Duration timeout{std::chrono::seconds(2)};
  int failures = 3;
  int recoveries = 5;

  bool operator==(const HealthConfig&) const = default;
};

enum class FailoverMode { automatic, manual };
enum class ClientsFormat { json, env, yaml };

struct ClientsConfig {
  std::filesystem::path file;
  ClientsFormat format = ClientsFormat::json;
  std::vector<std::string> hooks;  // executables
  Duration hook_timeout{std::chrono::seconds(10)};

  bool operator==(const ClientsConfig&) const = default;
};

struct FailoverPair {
  std::string primary;
  std::string standby;

  bool operator==(const FailoverPair&) const = default;
};

struct FailoverGroupConfig {
  std::string name;
  std::vector<FailoverPair> pairs;
  FailoverMode mode = FailoverMode::manual;
  HealthConfig health;
  Duration max_lag{std::chrono::seconds(30)};
  Duration hold_down{std::chrono::minutes(5)};
  Duration drain_timeout{std::chrono::seconds(30)};
  bool auto_failback = false;          // fail back by itself after hold_down
  std::vector<std::string> witnesses;  // status URLs
  std::vector<std::string> fence_hooks;
  ClientsConfig clients;

  bool operator==(const FailoverGroupConfig&) const = default;
};

enum class Compression { zstd, none };

struct BackupPlanConfig {
  std::string name;
  std::string cluster;
  ClusterKind kind = ClusterKind::kafka;  // of the cluster
  std::vector<std::string> topics;     // kafka
  std::vector<std::string> groups;     // kafka: consumer groups whose offsets are kept
  std::vector<std::string> streams;    // nats
  std::vector<std::string> exchanges;  // rabbitmq (definitions)
  std::vector<std::string> queues;     // rabbitmq (messages)
  std::filesystem::path dir;
  Duration full_every{std::chrono::hours(24)};
  Duration incremental_every{std::chrono::hours(1)};
  Duration retention{std::chrono::hours(24 * 30)};
  Compression compression = Compression::zstd;

  bool operator==(const BackupPlanConfig&) const = default;
};

struct Config {
  std::filesystem::path file;  // where it was loaded from
  int version = 1;
  DaemonConfig daemon;
  std::map<std::string, ClusterConfig> clusters;
  std::vector<MirrorConfig> mirrors;
  std::vector<FailoverGroupConfig> failover;
  std::vector<BackupPlanConfig> backups;

  const ClusterConfig* cluster(const std::string& name) const;
  const MirrorConfig* mirror(const std::string& name) const;
  const FailoverGroupConfig* group(const std::string& name) const;
  const BackupPlanConfig* plan(const std::string& name) const;
};

// Equality used by SIGHUP reload to restart only changed mirrors/plans: the mirror's (plan's)
// own settings and every setting of the clusters it uses (source and target), secrets included.
// A cluster missing from its config compares equal only to one missing from the other.
bool same_settings(const MirrorConfig& a, const MirrorConfig& b, const Config& ca,
                   const Config& cb);
bool same_settings(const BackupPlanConfig& a, const BackupPlanConfig& b, const Config& ca,
                   const Config& cb);

}  // namespace mqdr
