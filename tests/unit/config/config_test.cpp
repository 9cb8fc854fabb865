// The loader end to end: the shipped example, one good config per feature, the file-level
// failures, secrets, reload equality and the generated reference.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "test_util.hpp"

namespace mqdr::config::test {
namespace {

using namespace std::chrono_literals;

const std::filesystem::path kSource = MQDR_SOURCE_DIR;
const Env kExampleEnv = {{"KAFKA_EAST_PASSWORD", "kafka-pw-1"},
                         {"RABBIT_WEST_PASSWORD", "rabbit-pw-2"}};

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

// The example with /etc/mqdr/ moved into `dir`, and the files it names created there.
std::filesystem::path install_example(const TempDir& dir) {
  std::string text = read_file(kSource / "config/mqdr.example.yaml");
  std::string etc = (dir.path() / "etc/mqdr/").string();
  dir.write("etc/mqdr/admin.token", "admin-token-3\n");
  dir.write("etc/mqdr/nats-east.creds", "-----BEGIN NATS USER JWT-----\n");
  dir.write("etc/mqdr/rabbit-east.pass", "rabbit-pw-4\r\n");
  dir.write("etc/mqdr/ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
  dir.write("etc/mqdr/hooks/announce.sh", "#!/bin/sh\n", 0755);
  return dir.write("mqdr.yaml", replace_all(text, "/etc/mqdr/", etc), 0644);
}

TEST(Example, IsValidOnceItsFilesExist) {
  TempDir dir;
  auto file = install_example(dir);
  std::vector<Problem> warnings;
  Config c;
  try {
    c = load(file, options(kExampleEnv, dir.path()), &warnings);
  } catch (const Error& e) {
    FAIL() << e.what();
  }
  EXPECT_TRUE(warnings.empty()) << dump(warnings);
  auto etc = dir.path() / "etc/mqdr";

  EXPECT_EQ(c.version, 1);
  EXPECT_EQ(c.daemon.state_dir, "/var/lib/mqdr");
  EXPECT_EQ(c.daemon.admin.listen, "127.0.0.1:9780");
  EXPECT_EQ(c.daemon.admin.token_file, (etc / "admin.token").string());
  EXPECT_EQ(c.daemon.admin.token.reveal(), "admin-token-3");
  EXPECT_EQ(c.daemon.log.level, "info");
  EXPECT_EQ(c.daemon.log.format, LogFormat::text);

  ASSERT_EQ(c.clusters.size(), 6U);
  const auto& ke = *c.cluster("kafka-east");
  EXPECT_EQ(ke.name, "kafka-east");
  EXPECT_EQ(ke.kind, ClusterKind::kafka);
  EXPECT_EQ(ke.kafka.bootstrap_servers, "10.0.1.10:9092,10.0.1.11:9092");
  EXPECT_EQ(ke.kafka.properties.at("sasl.password"), "kafka-pw-1");
  EXPECT_EQ(ke.kafka.properties.at("security.protocol"), "SASL_SSL");
  EXPECT_EQ(ke.kafka.secret_properties, std::vector<std::string>{"sasl.password"});
  EXPECT_TRUE(ke.tls.enabled);  // SASL_SSL
  EXPECT_FALSE(c.cluster("kafka-west")->tls.enabled);

  const auto& ne = *c.cluster("nats-east");
  EXPECT_EQ(ne.nats.servers, std::vector<std::string>{"nats://10.0.2.10:4222"});
  EXPECT_EQ(ne.nats.credentials_file, (etc / "nats-east.creds").string());

  const auto& re = *c.cluster("rabbit-east");
  EXPECT_EQ(re.rabbitmq.uri, "amqps://mqdr@10.0.3.10:5671/orders");
  EXPECT_EQ(re.rabbitmq.user, "mqdr");
  EXPECT_EQ(re.rabbitmq.password.reveal(), "rabbit-pw-4");
  EXPECT_EQ(re.rabbitmq.host, "10.0.3.10");
  EXPECT_EQ(re.rabbitmq.port, 5671);
  EXPECT_EQ(re.rabbitmq.vhost, "orders");
  EXPECT_EQ(re.rabbitmq.management_uri, "https://10.0.3.10:15671");
  EXPECT_TRUE(re.tls.enabled);
  EXPECT_EQ(re.tls.ca_file, (etc / "ca.pem").string());

  const auto& rw = *c.cluster("rabbit-west");
  EXPECT_EQ(rw.rabbitmq.uri, "amqp://mqdr@10.1.3.10:5672/orders");
  EXPECT_EQ(rw.rabbitmq.password.reveal(), "rabbit-pw-2");
  EXPECT_EQ(rw.rabbitmq.port, 5672);
  EXPECT_FALSE(rw.tls.enabled);

  ASSERT_EQ(c.mirrors.size(), 3U);
  const auto& mk = *c.mirror("orders-kafka");
  EXPECT_EQ(mk.kind, ClusterKind::kafka);
  EXPECT_EQ(mk.kafka.topics, (std::vector<std::string>{"orders\\..*", "payments"}));
  EXPECT_EQ(mk.kafka.exclude_topics, std::vector<std::string>{".*\\.internal"});
  EXPECT_EQ(mk.kafka.rename, "{topic}");
  EXPECT_EQ(mk.kafka.groups, std::vector<std::string>{".*"});
  EXPECT_EQ(mk.kafka.delivery, Delivery::at_least_once);
  const auto& mn = *c.mirror("orders-nats");
  EXPECT_EQ(mn.kind, ClusterKind::nats);
  EXPECT_EQ(mn.nats.streams, std::vector<std::string>{"ORDERS"});
  EXPECT_EQ(mn.nats.mode, NatsMode::relay);
  const auto& mr = *c.mirror("orders-rabbit");
  EXPECT_EQ(mr.kind, ClusterKind::rabbitmq);
  EXPECT_EQ(mr.rabbitmq.exchanges, std::vector<std::string>{"orders"});
  EXPECT_TRUE(mr.rabbitmq.queues.empty());
  EXPECT_TRUE(mr.rabbitmq.sync_definitions);

  ASSERT_EQ(c.failover.size(), 1U);
  const auto& g = *c.group("east-west");
  EXPECT_EQ(g.pairs.size(), 3U);
  EXPECT_EQ(g.pairs[2].primary, "rabbit-east");
  EXPECT_EQ(g.pairs[2].standby, "rabbit-west");
  EXPECT_EQ(g.mode, FailoverMode::automatic);
  EXPECT_EQ(g.health.interval, 1s);
  EXPECT_EQ(g.health.timeout, 2s);
  EXPECT_EQ(g.health.failures, 3);
  EXPECT_EQ(g.health.recoveries, 5);
  EXPECT_EQ(g.max_lag, 30s);
  EXPECT_EQ(g.hold_down, 5min);
  EXPECT_EQ(g.drain_timeout, 30s);
  EXPECT_EQ(g.clients.file, "/run/mqdr/clients/east-west.json");
  EXPECT_EQ(g.clients.format, ClientsFormat::json);
  EXPECT_EQ(g.clients.hooks, std::vector<std::string>{(etc / "hooks/announce.sh").string()});
  EXPECT_EQ(g.clients.hook_timeout, 10s);

  ASSERT_EQ(c.backups.size(), 1U);
  const auto& b = *c.plan("hourly-east");
  EXPECT_EQ(b.kind, ClusterKind::kafka);
  EXPECT_EQ(b.topics, std::vector<std::string>{"orders\\..*"});
  EXPECT_EQ(b.dir, "/var/backups/mqdr");
  EXPECT_EQ(b.full_every, 24h);
  EXPECT_EQ(b.incremental_every, 1h);
  EXPECT_EQ(b.retention, 720h);
  EXPECT_EQ(b.compression, Compression::zstd);
}

TEST(Example, AsShippedNeedsOnlyItsFilesAndVariables) {
  if (std::filesystem::exists("/etc/mqdr")) GTEST_SKIP() << "/etc/mqdr exists on this host";
  std::vector<Problem> problems;
  try {
    load(kSource / "config/mqdr.example.yaml", options(kExampleEnv, "/etc/mqdr"));
  } catch (const Error& e) {
    problems = e.problems();
  }
  std::vector<std::string> paths;
  for (const auto& p : problems) {
    EXPECT_FALSE(p.warning) << p.str();
    EXPECT_NE(p.message.find("No such file or directory"), std::string::npos) << p.str();
    paths.push_back(p.path);
  }
  EXPECT_EQ(paths, (std::vector<std::string>{
                       "daemon.admin.token_file", "clusters.nats-east.credentials_file",
                       "clusters.rabbit-east.password_file", "clusters.rabbit-east.tls.ca_file",
                       "failover[0].clients.hooks[0]"}))
      << dump(problems);
}

TEST(Example, NamesUnsetVariablesAndTheirKeys) {
  TempDir dir;
  auto file = install_example(dir);
  std::vector<Problem> problems;
  try {
    load(file, options({}, dir.path()));
  } catch (const Error& e) {
    problems = e.problems();
  }
  ASSERT_EQ(problems.size(), 2U) << dump(problems);
  EXPECT_EQ(problems[0].path, "clusters.kafka-east.properties.sasl.password");
  EXPECT_EQ(problems[0].line, 18);
  EXPECT_NE(problems[0].message.find("'KAFKA_EAST_PASSWORD' is not set"), std::string::npos);
  EXPECT_EQ(problems[1].path, "clusters.rabbit-west.uri");
  EXPECT_NE(problems[1].message.find("'RABBIT_WEST_PASSWORD' is not set"), std::string::npos);
}

TEST(Example, ShowsNoSecretInAnyProblem) {
  // Break every line that holds a secret, and check no secret leaks into a message.
  TempDir dir;
  auto file = install_example(dir);
  std::string text = read_file(file);
  text = replace_all(text, "sasl.password: ${KAFKA_EAST_PASSWORD}",
                     "sasl.password:\n        - x${KAFKA_EAST_PASSWORD}");
  text = replace_all(text, "@10.1.3.10:5672/orders", "@10.1.3.10:0/orders");
  text = replace_all(text, "management_uri: https://10.0.3.10:15671",
                     "management_uri: https://10.0.3.10:15671\n    password: inline-pw-5");
  dir.write("mqdr.yaml", text);
  std::string all;
  try {
    load(file, options(kExampleEnv, dir.path()));
    FAIL() << "loaded";
  } catch (const Error& e) {
    all = e.what();
  }
  for (const char* secret : {"kafka-pw-1", "rabbit-pw-2", "admin-token-3", "rabbit-pw-4",
                             "inline-pw-5"}) {
    EXPECT_EQ(all.find(secret), std::string::npos) << secret << " in:\n" << all;
  }
  EXPECT_NE(all.find("clusters.kafka-east.properties.sasl.password: must be a string, number or "
                     "boolean, not a list"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("clusters.rabbit-west.uri: not a valid AMQP URI"), std::string::npos) << all;
  EXPECT_NE(all.find("clusters.rabbit-east.password_file: give either 'password' or "
                     "'password_file', not both"),
            std::string::npos)
      << all;
}

// The good/ files load (corpus_test.cpp); here, into what they say.
Config load_good(const std::string& name, const TempDir& dir) {
  return load_case(read_case(kSource / "tests/unit/config/good" / name), dir);
}

TEST(Good, DaemonFull) {
  TempDir dir;
  Config c = load_good("daemon-full.yaml", dir);
  EXPECT_EQ(c.daemon.state_dir, dir.path() / "state");
  EXPECT_EQ(c.daemon.shutdown_timeout, 90s);
  EXPECT_EQ(c.daemon.admin.listen, "[::]:9443");
  EXPECT_EQ(c.daemon.admin.token.reveal(), "t0ken");
  EXPECT_TRUE(c.daemon.admin.tls.enabled);
  EXPECT_EQ(c.daemon.admin.tls.cert_file, (dir.path() / "tls/admin.crt").string());
  EXPECT_EQ(c.daemon.admin.tls.key_password.reveal(), "keypass");
  EXPECT_EQ(c.daemon.log.level, "debug");
  EXPECT_EQ(c.daemon.log.format, LogFormat::json);
}

TEST(Good, KafkaMirrorFull) {
  TempDir dir;
  Config c = load_good("kafka-mirror-full.yaml", dir);
  const auto& east = c.cluster("kafka-east")->kafka;
  EXPECT_EQ(east.bootstrap_servers, "k1.east:9092,k2.east:9092,[2001:db8::1]:9092");
  EXPECT_EQ(east.properties.at("socket.keepalive.enable"), "true");
  EXPECT_EQ(east.properties.at("message.max.bytes"), "2000000");
  EXPECT_EQ(east.secret_properties, std::vector<std::string>{"sasl.password"});
  const auto& west = c.cluster("kafka-west")->kafka;
  EXPECT_EQ(west.properties.at("sasl.jaas.config"),
            "org.apache.kafka.common.security.plain.PlainLoginModule required;");
  EXPECT_EQ(west.secret_properties, std::vector<std::string>{"sasl.jaas.config"});
  const auto& m = c.mirrors.at(0).kafka;
  EXPECT_EQ(m.rename, "{source}.{topic}");
  EXPECT_FALSE(m.sync_topic_configs);
  EXPECT_EQ(m.delivery, Delivery::exactly_once);
  EXPECT_EQ(m.dead_letter_topic, "mqdr.dead-letters");
  EXPECT_EQ(m.refresh_interval, 1min);
  EXPECT_EQ(m.group_sync_interval, 10s);
  EXPECT_EQ(m.heartbeat_interval, 0s);
  EXPECT_EQ(m.consumer_properties.at("fetch.max.bytes"), "10485760");
  EXPECT_EQ(m.producer_properties.at("compression.type"), "zstd");
}

TEST(Good, NatsMirrorFull) {
  TempDir dir;
  Config c = load_good("nats-mirror-full.yaml", dir);
  const auto& east = *c.cluster("nats-east");
  EXPECT_EQ(east.nats.credentials_file, (dir.path() / "nats/east.creds").string());
  EXPECT_EQ(east.nats.domain, "east");
  EXPECT_FALSE(east.tls.enabled);
  const auto& west = *c.cluster("nats-west");
  EXPECT_EQ(west.nats.servers,
            (std::vector<std::string>{"tls://n1.west:4222", "tls://n2.west:4222"}));
  EXPECT_EQ(west.nats.nkey_seed_file, (dir.path() / "nats/west.seed").string());
  EXPECT_EQ(west.nats.api_prefix, "$JS.west.API");
  EXPECT_TRUE(west.tls.enabled);
  EXPECT_EQ(c.cluster("nats-third")->nats.password.reveal(), "pw");
  EXPECT_EQ(c.cluster("nats-fourth")->nats.token.reveal(), "tok");
  const auto& m = c.mirrors.at(0);
  EXPECT_EQ(m.kind, ClusterKind::nats);
  EXPECT_EQ(m.nats.mode, NatsMode::native);
  EXPECT_EQ(m.nats.refresh_interval, 45s);
  EXPECT_EQ(m.nats.consumer_sync_interval, 2s);
  EXPECT_EQ(m.nats.batch, 500);
  EXPECT_EQ(m.nats.max_inflight, 10000);
}

TEST(Good, RabbitmqMirrorFull) {
  TempDir dir;
  Config c = load_good("rabbitmq-mirror-full.yaml", dir);
  const auto& east = *c.cluster("rabbit-east");
  EXPECT_EQ(east.rabbitmq.vhost, "orders/eu");
  EXPECT_EQ(east.rabbitmq.password.reveal(), "p@ss/word");
  EXPECT_EQ(east.rabbitmq.port, 5671);
  EXPECT_EQ(east.tls.server_name, "rabbit.east.example.com");
  const auto& west = *c.cluster("rabbit-west");
  EXPECT_EQ(west.rabbitmq.user, "mqdr");
  EXPECT_EQ(west.rabbitmq.password.reveal(), "pw");
  EXPECT_EQ(west.rabbitmq.vhost, "/");
  const auto& m = c.mirrors.at(0).rabbitmq;
  EXPECT_EQ(m.exchanges, (std::vector<std::string>{"orders", "amq.topic"}));
  EXPECT_EQ(m.shovel_exchange, "shovelled");
  EXPECT_FALSE(m.sync_definitions);
  EXPECT_EQ(m.prefetch, 200);
  EXPECT_EQ(m.capture_max_length_bytes, 512LL << 20);
  EXPECT_DOUBLE_EQ(m.capture_alarm_ratio, 0.5);
  EXPECT_EQ(m.standby_margin, 0);
  EXPECT_EQ(m.refresh_interval, 10s);
}

TEST(Good, FailoverFull) {
  TempDir dir;
  Config c = load_good("failover-full.yaml", dir);
  const auto& g = c.failover.at(0);
  EXPECT_EQ(g.pairs.size(), 2U);
  EXPECT_EQ(g.pairs[1].standby, "nats-west");
  EXPECT_EQ(g.health.interval, 500ms);
  EXPECT_EQ(g.health.failures, 5);
  EXPECT_EQ(g.hold_down, 0s);
  EXPECT_TRUE(g.auto_failback);
  EXPECT_EQ(g.witnesses.size(), 2U);
  EXPECT_EQ(g.fence_hooks, std::vector<std::string>{(dir.path() / "hooks/fence.sh").string()});
  EXPECT_EQ(g.clients.format, ClientsFormat::env);
  EXPECT_EQ(g.clients.hook_timeout, 1min);
}

TEST(Good, BackupsEveryKind) {
  TempDir dir;
  Config c = load_good("backups-every-kind.yaml", dir);
  ASSERT_EQ(c.backups.size(), 3U);
  EXPECT_EQ(c.backups[0].kind, ClusterKind::kafka);
  EXPECT_EQ(c.backups[0].groups, std::vector<std::string>{".*"});
  EXPECT_EQ(c.backups[1].kind, ClusterKind::nats);
  EXPECT_EQ(c.backups[1].full_every, 7 * 24h);
  EXPECT_TRUE(c.backups[1].dir.is_absolute());
  EXPECT_EQ(c.backups[2].kind, ClusterKind::rabbitmq);
  EXPECT_EQ(c.backups[2].compression, Compression::none);
  EXPECT_EQ(c.backups[2].queues, std::vector<std::string>{"invoices"});
}

TEST(Good, YamlFeatures) {
  TempDir dir;
  Config c = load_good("yaml-features.yaml", dir);
  EXPECT_EQ(c.cluster("b")->kafka.bootstrap_servers, "k1:9092");
  const auto& m = c.mirrors.at(0).kafka;
  EXPECT_EQ(m.topics, (std::vector<std::string>{"t.*", "u"}));
  EXPECT_EQ(m.rename, "{target}.{topic}");
  EXPECT_TRUE(m.sync_topic_configs);
  EXPECT_EQ(m.consumer_properties.at("client.rack"), "${not-a-variable}");
  EXPECT_EQ(c.backups.at(0).topics, m.topics);
}

TEST(Load, MinimalConfigTakesEveryDefault) {
  std::vector<Problem> warnings;
  Config c = load_string(kBase, "t.yaml", options({}, "/base"), &warnings);
  EXPECT_TRUE(warnings.empty()) << dump(warnings);
  EXPECT_EQ(c.daemon, DaemonConfig{});
  const auto& m = c.mirrors.at(0);
  MirrorConfig want;
  want.name = "m";
  want.source = "a";
  want.target = "b";
  want.kafka.topics = {"t"};
  EXPECT_EQ(m, want);
  EXPECT_EQ(c.file, "t.yaml");
}

TEST(Load, NothingToDoIsAWarning) {
  std::vector<Problem> warnings;
  load_string("version: 1\nclusters: {a: {kind: nats, servers: 'h:4222'}}\n", "t.yaml",
              options({}, "/"), &warnings);
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_TRUE(warnings[0].warning);
  EXPECT_EQ(warnings[0].str(),
            "t.yaml: warning: nothing to do: no mirrors, failover groups or backup plans are "
            "configured");
}

TEST(Load, ReportsEveryProblemAtOnceInFileOrder) {
  auto problems = problems_of(R"(version: 1
daemon:
  log: {level: loud}
clusters:
  a: {kind: kafka, bootstrap_servers: "a1:9092"}
mirrors:
  - {name: m, source: a, target: x, topics: [t], rename: 'x'}
failover:
  - {name: g, pairs: [{primary: a, standby: b}], health: {failures: 0}}
)");
  ASSERT_EQ(problems.size(), 5U) << dump(problems);
  EXPECT_EQ(problems[0].str(),
            "test.yaml:3:16: daemon.log.level: must be one of: trace, debug, info, warn, error, "
            "critical, off, got 'loud'");
  EXPECT_EQ(problems[1].path, "mirrors[0].target");
  EXPECT_EQ(problems[2].path, "mirrors[0].rename");
  EXPECT_EQ(problems[3].path, "failover[0].pairs[0].standby");
  EXPECT_EQ(problems[4].path, "failover[0].health.failures");
  for (std::size_t i = 1; i < problems.size(); ++i) {
    EXPECT_LE(problems[i - 1].line, problems[i].line);
  }
}

TEST(Load, RelativePathsFollowTheConfigFile) {
  TempDir dir;
  dir.write("conf/secrets/token", "t0k3n\n");
  auto file = dir.write("conf/mqdr.yaml", std::string(kBase) + R"(daemon:
  state_dir: state
  admin: {token_file: secrets/token}
backups:
  - {name: p, cluster: a, topics: [t], dir: ../backups}
)");
  Config c = load(file, options({}, {}));  // no base_dir: the file's directory
  auto conf = std::filesystem::absolute(dir.path() / "conf").lexically_normal();
  EXPECT_EQ(c.daemon.state_dir, conf / "state");
  EXPECT_EQ(c.daemon.admin.token_file, (conf / "secrets/token").string());
  EXPECT_EQ(c.daemon.admin.token.reveal(), "t0k3n");
  EXPECT_EQ(c.backups[0].dir, (dir.path() / "backups").lexically_normal());
}

TEST(Env, SubstitutesEscapesAndDefaults) {
  Env env = {{"HOST", "k1"}, {"PORT", "9093"}, {"EMPTY", ""}, {"FAILS", "7"}};
  Config c = load_string(R"(version: 1
clusters:
  a: {kind: kafka, bootstrap_servers: "${HOST}:${PORT}", properties: {x: "$${HOST}", y: "${NOPE:-d}", z: "${EMPTY:-e}", w: "a$b$$c"}}
  b: {kind: kafka, bootstrap_servers: "b1:9092"}
mirrors:
  - {name: m, source: a, target: b, topics: [t]}
failover:
  - {name: g, pairs: [{primary: a, standby: b}], health: {failures: "${FAILS}"}}
)",
                         "t.yaml", options(env, "/"));
  const auto& a = *c.cluster("a");
  EXPECT_EQ(a.kafka.bootstrap_servers, "k1:9093");
  EXPECT_EQ(a.kafka.properties.at("x"), "${HOST}");
  EXPECT_EQ(a.kafka.properties.at("y"), "d");
  EXPECT_EQ(a.kafka.properties.at("z"), "e");
  EXPECT_EQ(a.kafka.properties.at("w"), "a$b$$c");
  EXPECT_EQ(c.failover[0].health.failures, 7);
}

TEST(Env, ValuesFromTheEnvironmentAreNotShown) {
  auto problems = problems_of(std::string(kBase) + "daemon: {shutdown_timeout: '${T}'}\n",
                              {{"T", "leaky-value"}});
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0].str(),
            "test.yaml:7:28: daemon.shutdown_timeout: must be a duration such as 500ms, 2s, 5m, "
            "1h, 30d or 1m30s");
}

TEST(Secrets, FilesAreReadAndTrimmed) {
  TempDir dir;
  dir.write("nats.token", "tok\r\n\n");
  dir.write("rabbit.pass", "pw with spaces  \n");
  dir.write("kafka.pass", "kpw");
  dir.write("key.pass", "keypw\n");
  dir.write("client.key", "KEY");
  dir.write("client.crt", "CRT", 0644);
  Config c = load_string(R"(version: 1
clusters:
  n: {kind: nats, servers: [tls://n1:4222, 'n1:4223'], token_file: nats.token}
  r:
    kind: rabbitmq
    uri: amqps://guest@r1/
    password_file: rabbit.pass
    tls: {cert_file: client.crt, key_file: client.key, key_password_file: key.pass}
  k:
    kind: kafka
    bootstrap_servers: [k1:9092, k2]
    properties: {sasl.password_file: kafka.pass, ssl.key.password: x, sasl.jaas.config: y, client.id: z}
backups:
  - {name: p, cluster: k, topics: [t], dir: /b}
)",
                         "t.yaml", options({}, dir.path()));
  const auto& n = *c.cluster("n");
  EXPECT_EQ(n.nats.token.reveal(), "tok");
  EXPECT_TRUE(n.tls.enabled);
  const auto& r = *c.cluster("r");
  EXPECT_EQ(r.rabbitmq.password.reveal(), "pw with spaces  ");
  EXPECT_EQ(r.rabbitmq.uri, "amqps://guest@r1/");
  EXPECT_EQ(r.rabbitmq.port, 5671);
  EXPECT_EQ(r.rabbitmq.vhost, "/");
  EXPECT_EQ(r.tls.key_password.reveal(), "keypw");
  EXPECT_TRUE(r.tls.enabled);
  EXPECT_TRUE(r.tls.verify);
  const auto& k = *c.cluster("k");
  EXPECT_EQ(k.kafka.bootstrap_servers, "k1:9092,k2");
  EXPECT_EQ(k.kafka.properties.at("sasl.password"), "kpw");
  EXPECT_EQ(k.kafka.properties.count("sasl.password_file"), 0U);
  EXPECT_EQ(k.kafka.secret_properties,
            (std::vector<std::string>{"sasl.jaas.config", "sasl.password", "ssl.key.password"}));
}

TEST(Rabbit, UriWithoutUserMeansGuestAndUserKeyWorks) {
  Config c = load_string(R"(version: 1
clusters:
  r1: {kind: rabbitmq, uri: "amqp://r1:5673/%2F"}
  r2: {kind: rabbitmq, uri: "amqps://[::1]/v", user: mqdr, password: "${PW}"}
mirrors:
  - {name: m, source: r1, target: r2, queues: [q]}
)",
                         "t.yaml", options({{"PW", "pw"}}, "/"));
  const auto& r1 = c.cluster("r1")->rabbitmq;
  EXPECT_EQ(r1.user, "guest");
  EXPECT_EQ(r1.password.reveal(), "guest");
  EXPECT_EQ(r1.port, 5673);
  EXPECT_EQ(r1.vhost, "/");
  const auto& r2 = *c.cluster("r2");
  EXPECT_EQ(r2.rabbitmq.user, "mqdr");
  EXPECT_EQ(r2.rabbitmq.password.reveal(), "pw");
  EXPECT_EQ(r2.rabbitmq.host, "::1");
  EXPECT_EQ(r2.rabbitmq.port, 5671);
  EXPECT_TRUE(r2.tls.enabled);
  EXPECT_EQ(c.mirrors[0].rabbitmq.queues, std::vector<std::string>{"q"});
}

TEST(Secrets, AWorldReadableSecretFileIsAWarning) {
  TempDir dir;
  dir.write("token", "t", 0644);
  std::vector<Problem> warnings;
  load_string(std::string(kBase) + "daemon: {admin: {token_file: token}}\n", "t.yaml",
              options({}, dir.path()), &warnings);
  ASSERT_EQ(warnings.size(), 1U) << dump(warnings);
  EXPECT_TRUE(warnings[0].warning);
  EXPECT_EQ(warnings[0].path, "daemon.admin.token_file");
  EXPECT_EQ(warnings[0].line, 7);
  EXPECT_NE(warnings[0].message.find("every user may read it (mode 0644)"), std::string::npos);
  EXPECT_NE(warnings[0].str().find(": warning: "), std::string::npos);
}

TEST(Secrets, WronglyTypedSecretsAreNotEchoed) {
  auto problems = problems_of(R"(version: 1
clusters:
  n: {kind: nats, servers: [n1], user: u, password: [sekrit-1]}
  k: {kind: kafka, bootstrap_servers: k1, properties: {sasl.password: {v: sekrit-2}}}
)");
  ASSERT_EQ(problems.size(), 2U) << dump(problems);
  EXPECT_EQ(problems[0].str(), "test.yaml:3:53: clusters.n.password: must be a string, not a list");
  EXPECT_EQ(problems[1].path, "clusters.k.properties.sasl.password");
  EXPECT_EQ(dump(problems).find("sekrit"), std::string::npos);
}

TEST(Files, MissingDirectoryEmptyBinaryHugeFifo) {
  TempDir dir;
  auto message_of = [&](const std::filesystem::path& file) {
    try {
      load(file, options({}, dir.path()));
    } catch (const Error& e) {
      EXPECT_EQ(e.problems().size(), 1U) << e.what();
      return e.problems().at(0).str();
    }
    return std::string("loaded");
  };
  auto f = (dir.path() / "missing.yaml").string();
  EXPECT_EQ(message_of(f), f + ": cannot read: No such file or directory");
  EXPECT_EQ(message_of(dir.path()), dir.path().string() + ": is a directory; expected a YAML file");
  f = dir.write("empty.yaml", "").string();
  EXPECT_EQ(message_of(f), f + ": the file is empty; a config starts with 'version: 1'");
  f = dir.write("blank.yaml", "\n  \n# only a comment\n").string();
  EXPECT_EQ(message_of(f), f + ": the file is empty; a config starts with 'version: 1'");
  f = dir.write("binary.yaml", std::string("version: 1\nab\0cd", 16)).string();
  EXPECT_EQ(message_of(f), f + ":2:3: contains a NUL byte: this is a binary file, not YAML");
  f = dir.write("latin1.yaml", "version: 1\n# caf\xe9\n").string();
  EXPECT_EQ(message_of(f),
            f + ":2:6: not valid UTF-8: is this a binary file? (a config must be UTF-8 text)");
  f = dir.write("utf16.yaml", std::string("\xff\xfev\0", 4)).string();
  EXPECT_EQ(message_of(f), f + ": is UTF-16 text; save it as UTF-8");
  f = dir.write("syntax.yaml", "version: 1\nclusters: {a: [\n").string();
  EXPECT_EQ(message_of(f).rfind(f + ":3:1: invalid YAML: ", 0), 0U) << message_of(f);

  f = (dir.path() / "huge.yaml").string();
  {
    std::ofstream out(f);
  }
  std::filesystem::resize_file(f, kMaxConfigBytes + 1);
  EXPECT_EQ(message_of(f), f + ": is 16777217 bytes; a config file may have at most 16 MiB");

  f = (dir.path() / "fifo.yaml").string();
  ASSERT_EQ(::mkfifo(f.c_str(), 0600), 0);
  EXPECT_EQ(message_of(f), f + ": is not a regular file; expected a YAML file");
}

TEST(Files, DeepNestingAndManyProblemsNeitherCrashNorFlood) {
  auto problems = problems_of("version: 1\nx: " + std::string(100000, '[') + "\n");
  ASSERT_EQ(problems.size(), 1U) << dump(problems);
  EXPECT_NE(problems[0].message.find("invalid YAML"), std::string::npos);

  std::string many = "version: 1\n";
  for (int i = 0; i < 1500; ++i) many += "unknown_" + std::to_string(i) + ": 1\n";
  problems = problems_of(many);
  ASSERT_EQ(problems.size(), 1001U);
  EXPECT_EQ(problems.back().message, "500 more problems not shown; fix the ones above first");
}

TEST(Files, LoadStringRefusesHugeText) {
  auto problems = problems_of(std::string(kMaxConfigBytes + 1, '#'));
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0].str(), "test.yaml: is 16777217 bytes; a config file may have at most 16 MiB");
}

TEST(Yaml, AnchorsAndAliasesWork) {
  Config c = load_string(R"(version: 1
clusters:
  a: &kafka {kind: kafka, bootstrap_servers: "k1:9092"}
  b: *kafka
mirrors:
  - {name: m1, source: a, target: b, topics: &topics [t1, t2]}
  - {name: m2, source: b, target: a, topics: *topics, rename: '{source}.{topic}'}
)",
                         "t.yaml", options({}, "/"));
  EXPECT_EQ(c.cluster("b")->kafka.bootstrap_servers, "k1:9092");
  EXPECT_EQ(c.mirrors[1].kafka.topics, (std::vector<std::string>{"t1", "t2"}));
}

TEST(Lookup, FindsByNameOrReturnsNull) {
  Config c = load_string(std::string(kBase) + R"(failover:
  - {name: g, pairs: [{primary: a, standby: b}]}
backups:
  - {name: p, cluster: a, topics: [t], dir: /b}
)",
                         "t.yaml", options({}, "/"));
  EXPECT_EQ(c.cluster("a")->name, "a");
  EXPECT_EQ(c.cluster("zz"), nullptr);
  EXPECT_EQ(c.mirror("m")->source, "a");
  EXPECT_EQ(c.mirror("a"), nullptr);
  EXPECT_EQ(c.group("g")->pairs.size(), 1U);
  EXPECT_EQ(c.group("m"), nullptr);
  EXPECT_EQ(c.plan("p")->cluster, "a");
  EXPECT_EQ(c.plan("g"), nullptr);
  EXPECT_STREQ(to_string(ClusterKind::kafka), "kafka");
  EXPECT_STREQ(to_string(ClusterKind::nats), "nats");
  EXPECT_STREQ(to_string(ClusterKind::rabbitmq), "rabbitmq");
}

TEST(Reload, SameSettingsComparesTheMirrorAndBothClustersWithSecrets) {
  auto config = [](const std::string& extra_a, const std::string& mirror_extra,
                   const std::string& password) {
    return load_string(R"(version: 1
clusters:
  a: {kind: kafka, bootstrap_servers: "a1:9092", properties: {sasl.password: "${PW}"})" +
                           extra_a + R"(}
  b: {kind: kafka, bootstrap_servers: "b1:9092"}
  c: {kind: kafka, bootstrap_servers: "c1:9092"}
mirrors:
  - {name: m, source: a, target: b, topics: [t])" +
                           mirror_extra + R"(}
backups:
  - {name: p, cluster: a, topics: [t], dir: /b}
)",
                       "t.yaml", options({{"PW", password}}, "/"));
  };
  Config base = config("", "", "one");
  EXPECT_TRUE(same_settings(base.mirrors[0], base.mirrors[0], base, base));
  Config same = config("", "", "one");
  EXPECT_TRUE(same_settings(base.mirrors[0], same.mirrors[0], base, same));
  EXPECT_TRUE(same_settings(base.backups[0], same.backups[0], base, same));

  Config secret = config("", "", "two");
  EXPECT_FALSE(same_settings(base.mirrors[0], secret.mirrors[0], base, secret));
  EXPECT_FALSE(same_settings(base.backups[0], secret.backups[0], base, secret));
  Config cluster = config(", tls: {verify_hostname: false}", "", "one");
  EXPECT_FALSE(same_settings(base.mirrors[0], cluster.mirrors[0], base, cluster));
  Config mirror = config("", ", groups: ['.*']", "one");
  EXPECT_FALSE(same_settings(base.mirrors[0], mirror.mirrors[0], base, mirror));
  EXPECT_TRUE(same_settings(base.backups[0], mirror.backups[0], base, mirror));

  // A change to a cluster the mirror does not use restarts nothing.
  Config other = base;
  other.clusters["c"].kafka.bootstrap_servers = "c2:9092";
  EXPECT_TRUE(same_settings(base.mirrors[0], other.mirrors[0], base, other));
  // The target counts as much as the source.
  other.clusters["b"].kafka.properties["linger.ms"] = "5";
  EXPECT_FALSE(same_settings(base.mirrors[0], other.mirrors[0], base, other));
}

TEST(Problem, FormatsPositionPathAndSeverity) {
  Problem p{"f.yaml", 3, 7, "mirrors[0].source", "unknown cluster 'x'", false};
  EXPECT_EQ(p.str(), "f.yaml:3:7: mirrors[0].source: unknown cluster 'x'");
  p.warning = true;
  EXPECT_EQ(p.str(), "f.yaml:3:7: mirrors[0].source: warning: unknown cluster 'x'");
  Problem file_level{"f.yaml", 0, 0, "", "the file is empty", false};
  EXPECT_EQ(file_level.str(), "f.yaml: the file is empty");
  Problem no_path{"f.yaml", 2, 1, "", "invalid YAML: x", false};
  EXPECT_EQ(no_path.str(), "f.yaml:2:1: invalid YAML: x");
  Error e({p, file_level});
  EXPECT_STREQ(e.what(),
               "f.yaml:3:7: mirrors[0].source: warning: unknown cluster 'x'\n"
               "f.yaml: the file is empty");
}

TEST(Reference, CommittedDocsMatchTheGenerator) {
  std::string committed = read_file(kSource / "docs/configuration.md");
  EXPECT_TRUE(committed == reference_markdown())
      << "docs/configuration.md is out of date; regenerate it with\n"
         "  cmake --build BUILD --target mqdr_config_docgen && "
         "BUILD/src/config/mqdr_config_docgen > docs/configuration.md";
}

TEST(Reference, DocumentsEveryKeyOfTheExample) {
  std::string doc = reference_markdown();
  for (const char* key : {"`state_dir`", "`token_file`", "`bootstrap_servers`", "`properties`",
                          "`credentials_file`", "`password_file`", "`management_uri`",
                          "`exclude_topics`", "`rename`", "`sync_topic_configs`", "`delivery`",
                          "`streams`", "`consumers`", "`exchanges`", "`sync_definitions`",
                          "`hold_down`", "`drain_timeout`", "`witnesses`", "`fence_hooks`",
                          "`hook_timeout`", "`full_every`", "`incremental_every`", "`retention`",
                          "`compression`", "## clusters.NAME", "## failover[].health"}) {
    EXPECT_NE(doc.find(key), std::string::npos) << key;
  }
}

}  // namespace
}  // namespace mqdr::config::test
