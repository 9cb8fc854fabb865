// Secrets never leave mqdr: a real `mqdr run` (log level debug) mirrors Kafka over SASL_SSL
// (SCRAM-SHA-512) to the TLS broker's client-certificate listener and probes NATS (TLS + token)
// and RabbitMQ (amqps + password) clusters, with every secret a distinctive string coming from a
// different place (inline admin token, ${ENV} Kafka password, token_file, password_file). The
// daemon's whole log, /v1/status, `mqdr status --json`, /metrics, the clients file written by a
// failover, and the error output of `mqdr validate` on a broken config holding the same secrets
// are searched for each of them. A second run with wrong passwords proves the brokers' refusals
// are reported (the clusters are down, with a reason) without echoing either password.
#include <gtest/gtest.h>
#include <httplib.h>
#include <librdkafka/rdkafka.h>

#include <nlohmann/json.hpp>

#include "tests/harness/endpoints.hpp"
#include "tests/unit/ops/ops_util.hpp"

namespace mqdr::ops_test {
namespace {

using nlohmann::json;
using test::Endpoints;

const std::string kAdminToken = "admin-token-s3cr3t-q7w2";
const std::string kWrongKafkaPassword = "wrong-kafka-pw-s3cr3t-k1";
const std::string kWrongRabbitPassword = "wrong-rabbit-pw-s3cr3t-r1";
const std::string kWrongNatsToken = "wrong-nats-token-s3cr3t-n1";

using KafkaHandle = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;

// The test's own client on the TLS broker's PLAINTEXT listener (set-up and checks only).
KafkaHandle plain_client(rd_kafka_type_t type) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", Endpoints::get().kafka_tls_plaintext.c_str(), err,
                    sizeof err);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  return {rk, &rd_kafka_destroy};
}

bool create_topic(const std::string& topic) {
  auto rk = plain_client(RD_KAFKA_PRODUCER);
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), 1, 1, err, sizeof err);
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk.get());
  rd_kafka_CreateTopics(rk.get(), &nt, 1, nullptr, q);
  bool ok = false;
  if (rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000)) {
    size_t n = 0;
    const rd_kafka_topic_result_t** res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    ok = rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR && n == 1 &&
         rd_kafka_topic_result_error(res[0]) == RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(q);
  return ok;
}

bool produce(const std::string& topic, int count) {
  auto rk = plain_client(RD_KAFKA_PRODUCER);
  for (int i = 0; i < count; ++i) {
    const std::string value = "secret-test-record-" + std::to_string(i);
    if (rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_END) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return false;
    }
  }
  return rd_kafka_flush(rk.get(), 30000) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

std::int64_t high_watermark(const std::string& topic) {
  auto rk = plain_client(RD_KAFKA_CONSUMER);
  std::int64_t lo = 0, hi = -1;
  if (rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), 0, &lo, &hi, 5000) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return -1;
  }
  return hi;
}

struct Secrets {
  std::string admin_token;
  std::string kafka_password;
  std::string nats_token;
  std::string rabbit_password;
};

// The whole config; secrets come from four places: inline (admin token), ${ENV} (Kafka),
// token_file (NATS) and password_file (RabbitMQ).
std::string config_text(const fs::path& dir, int port, const std::string& topic) {
  const auto& ep = Endpoints::get();
  const std::string tls_client = "    tls: { ca_file: " + ep.tls_ca + ", cert_file: " +
                                 ep.tls_client_cert + ", key_file: " + ep.tls_client_key + " }\n";
  return "version: 1\n"
         "daemon:\n"
         "  state_dir: " + (dir / "state").string() + "\n"
         "  admin: { listen: 127.0.0.1:" + std::to_string(port) + ", token: " + kAdminToken + " }\n"
         "  log: { level: debug, format: text }\n"
         "clusters:\n"
         "  kafka-sasl:\n"
         "    kind: kafka\n"
         "    bootstrap_servers: " + ep.kafka_tls_sasl_ssl + "\n"
         "    properties:\n"
         "      security.protocol: SASL_SSL\n"
         "      sasl.mechanism: SCRAM-SHA-512\n"
         "      sasl.username: " + ep.kafka_scram_user + "\n"
         "      sasl.password: ${MQDR_TEST_KAFKA_PASSWORD}\n"
         // Every librdkafka debug line (its configuration dump, TLS and SASL exchanges) goes to
         // mqdr's debug log.
         "      debug: all\n"
         "    tls: { ca_file: " + ep.tls_ca + " }\n"
         "  kafka-mtls:\n"
         "    kind: kafka\n"
         "    bootstrap_servers: " + ep.kafka_tls_ssl + "\n" + tls_client +
         "  nats-tls:\n"
         "    kind: nats\n"
         "    servers: [" + ep.nats_tls + "]\n"
         "    token_file: nats.token\n" + tls_client +
         "  nats-plain: { kind: nats, servers: [" + ep.nats_b + "] }\n"
         "  rabbit-tls:\n"
         "    kind: rabbitmq\n"
         "    uri: amqps://" + ep.rabbit_tls_user + "@" + test::host_port_of(ep.rabbit_a_tls) + "/\n"
         "    password_file: rabbit.pass\n" + tls_client +
         "  rabbit-plain:\n"
         "    kind: rabbitmq\n"
         "    uri: amqp://" + ep.rabbit_user + "@" + test::host_port_of(ep.rabbit_b) + "/\n"
         "    password: " + ep.rabbit_password + "\n"
         "mirrors:\n"
         "  - name: sasl-to-mtls\n"
         "    source: kafka-sasl\n"
         "    target: kafka-mtls\n"
         "    topics: ['" + topic + "']\n"
         "    rename: 'copy.{topic}'\n"
         "    groups: []\n"
         "failover:\n"
         "  - name: sec\n"
         "    pairs:\n"
         "      - { primary: kafka-sasl, standby: kafka-mtls }\n"
         "      - { primary: nats-tls, standby: nats-plain }\n"
         "      - { primary: rabbit-tls, standby: rabbit-plain }\n"
         "    mode: manual\n"
         "    drain_timeout: 10s\n"
         "    clients: { file: " + (dir / "clients.json").string() + ", format: json }\n";
}

void write_secret_files(const fs::path& dir, const Secrets& s) {
  spit(dir / "nats.token", s.nats_token + "\n");
  spit(dir / "rabbit.pass", s.rabbit_password + "\n");
  for (const char* f : {"nats.token", "rabbit.pass"}) {
    fs::permissions(dir / f, fs::perms::owner_read | fs::perms::owner_write);
  }
}

class SecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& ep = Endpoints::get();
    MQDR_REQUIRE_BROKER(ep.kafka_tls_sasl_ssl);
    MQDR_REQUIRE_BROKER(ep.nats_tls);
    MQDR_REQUIRE_BROKER(ep.nats_b);
    MQDR_REQUIRE_BROKER(ep.rabbit_a_tls);
    MQDR_REQUIRE_BROKER(ep.rabbit_b);
  }

  // Every place a secret could leak to, searched for each of `secrets`.
  static void expect_absent(const std::string& where, const std::string& text,
                            const std::vector<std::string>& secrets) {
    for (const auto& s : secrets) {
      EXPECT_EQ(text.find(s), std::string::npos)
          << where << " contains the secret '" << s << "':\n" << text.substr(0, 4000);
    }
  }

  static std::string get(int port, const std::string& path) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(2, 0);
    c.set_read_timeout(10, 0);
    auto r = c.Get(path.c_str());
    return r ? r->body : std::string();
  }
};

TEST_F(SecretsTest, NoSecretInLogsStatusMetricsClientsFileOrValidateErrors) {
  const auto& ep = Endpoints::get();
  const Secrets good{kAdminToken, ep.kafka_scram_password, ep.nats_tls_token,
                     ep.rabbit_tls_password};
  const std::vector<std::string> secrets{good.admin_token, good.kafka_password, good.nats_token,
                                         good.rabbit_password};
  TempDir dir("secrets");
  const std::string topic = "secrets-test-" + random_suffix();
  ASSERT_TRUE(create_topic(topic));
  ASSERT_TRUE(produce(topic, 20));
  const int port = free_port();
  write_secret_files(dir.path(), good);
  spit(dir / "mqdr.yaml", config_text(dir.path(), port, topic));
  const std::map<std::string, std::string> env{{"MQDR_TEST_KAFKA_PASSWORD", good.kafka_password}};

  auto v = run({MQDR_BINARY, "validate", "-c", (dir / "mqdr.yaml").string()}, env);
  ASSERT_EQ(v.code, 0) << v.output;
  expect_absent("mqdr validate output", v.output, secrets);

  Proc daemon = spawn({MQDR_BINARY, "run", "-c", (dir / "mqdr.yaml").string()}, dir / "run.log",
                      env);
  // The mirror copies over SASL_SSL -> mutual TLS, and every TLS cluster's probe succeeds.
  EXPECT_TRUE(eventually([&] { return high_watermark("copy." + topic) >= 20; }, 90s))
      << slurp(dir / "run.log").substr(0, 8000);
  json status;
  EXPECT_TRUE(eventually(
      [&] {
        status = json::parse(get(port, "/v1/status"), nullptr, false);
        if (status.is_discarded() || !status.contains("clusters")) return false;
        int up = 0;
        for (const auto& c : status["clusters"]) up += c.value("up", json(false)) == json(true);
        return up == 6;
      },
      60s))
      << status.dump(2);

  // A failover writes the clients file (it names clusters and addresses, never credentials).
  {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(120, 0);
    auto r = c.Post("/v1/failover/sec?force=true", {{"Authorization", "Bearer " + kAdminToken}},
                    "", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 202) << r->body;
    expect_absent("the failover answer", r->body, secrets);
  }
  EXPECT_TRUE(eventually([&] { return fs::exists(dir / "clients.json"); }, 90s))
      << get(port, "/v1/status");

  const std::string status_body = get(port, "/v1/status");
  ASSERT_FALSE(status_body.empty());
  expect_absent("/v1/status", status_body, secrets);
  const std::string metrics = get(port, "/metrics");
  ASSERT_NE(metrics.find("mqdr_cluster_up"), std::string::npos) << metrics.substr(0, 2000);
  expect_absent("/metrics", metrics, secrets);
  auto cli = run({MQDR_BINARY, "status", "-c", (dir / "mqdr.yaml").string(), "--json"}, env);
  EXPECT_EQ(cli.code, 0) << cli.output;
  EXPECT_NE(cli.output.find("kafka-sasl"), std::string::npos) << cli.output;
  expect_absent("mqdr status --json", cli.output, secrets);
  auto table = run({MQDR_BINARY, "status", "-c", (dir / "mqdr.yaml").string()}, env);
  EXPECT_EQ(table.code, 0) << table.output;
  expect_absent("mqdr status", table.output, secrets);
  const std::string clients = slurp(dir / "clients.json");
  EXPECT_NE(clients.find("kafka-sasl"), std::string::npos) << clients;
  expect_absent("the clients file", clients, secrets);

  EXPECT_EQ(stop(daemon), 0);
  const std::string log = slurp(dir / "run.log");
  EXPECT_NE(log.find(" debug "), std::string::npos) << "the log is not at debug level:\n"
                                                 << log.substr(0, 3000);
  expect_absent("the daemon's log", log, secrets);

  // A broken config holding the same secrets: every problem reported, no secret quoted.
  const std::string broken =
      "version: 1\n"
      "daemon:\n"
      "  state_dir: " + (dir / "state2").string() + "\n"
      "  admin: { listen: 127.0.0.1:1, token: [" + good.admin_token + "] }\n"
      "clusters:\n"
      "  k:\n"
      "    kind: kafka\n"
      "    bootstrap_servers: 127.0.0.1:1\n"
      "    properties: { sasl.password: " + good.kafka_password + ", sasl.pasword: " +
      good.kafka_password + " }\n"
      "    pasword: " + good.kafka_password + "\n"
      "  n:\n"
      "    kind: nats\n"
      "    servers: [nats://127.0.0.1:1]\n"
      "    token: " + good.nats_token + "\n"
      "    user: someone\n"
      "    password: " + good.nats_token + "\n"
      "  r:\n"
      "    kind: rabbitmq\n"
      "    uri: 'amqp://u:" + good.rabbit_password + "@127.0.0.1:1/'\n"
      "    password: " + good.rabbit_password + "\n"
      "    port: " + good.rabbit_password + "\n";
  spit(dir / "broken.yaml", broken);
  auto bad = run({MQDR_BINARY, "validate", "-c", (dir / "broken.yaml").string()});
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("choose one way to authenticate"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("also given in 'uri'"), std::string::npos) << bad.output;
  expect_absent("mqdr validate of a broken config", bad.output, secrets);
  auto bad_run = run({MQDR_BINARY, "run", "-c", (dir / "broken.yaml").string()}, {}, false, 60s);
  EXPECT_EQ(bad_run.code, 2) << bad_run.output;
  expect_absent("mqdr run of a broken config", bad_run.output, secrets);
}

TEST_F(SecretsTest, WrongPasswordsAreRefusedWithoutEchoingThem) {
  const auto& ep = Endpoints::get();
  const Secrets wrong{kAdminToken, kWrongKafkaPassword, kWrongNatsToken, kWrongRabbitPassword};
  const std::vector<std::string> secrets{kAdminToken, kWrongKafkaPassword, kWrongNatsToken,
                                         kWrongRabbitPassword, ep.kafka_scram_password,
                                         ep.nats_tls_token, ep.rabbit_tls_password};
  TempDir dir("wrong-secrets");
  const std::string topic = "secrets-wrong-" + random_suffix();
  ASSERT_TRUE(create_topic(topic));
  const int port = free_port();
  write_secret_files(dir.path(), wrong);
  spit(dir / "mqdr.yaml", config_text(dir.path(), port, topic));
  const std::map<std::string, std::string> env{{"MQDR_TEST_KAFKA_PASSWORD", wrong.kafka_password}};

  Proc daemon = spawn({MQDR_BINARY, "run", "-c", (dir / "mqdr.yaml").string()}, dir / "run.log",
                      env);
  // Each refused cluster is down with the broker's reason.
  json status;
  std::map<std::string, std::string> reasons;
  EXPECT_TRUE(eventually(
      [&] {
        status = json::parse(get(port, "/v1/status"), nullptr, false);
        if (status.is_discarded() || !status.contains("clusters")) return false;
        reasons.clear();
        for (const auto& c : status["clusters"]) {
          if (c.value("up", json(true)) == json(false) && c.contains("message")) {
            reasons[c.value("name", "")] = c["message"].get<std::string>();
          }
        }
        return reasons.count("kafka-sasl") && reasons.count("nats-tls") &&
               reasons.count("rabbit-tls");
      },
      60s))
      << status.dump(2);
  EXPECT_NE(reasons["kafka-sasl"].find("SASL authentication"), std::string::npos)
      << reasons["kafka-sasl"];
  EXPECT_NE(reasons["nats-tls"].find("Authorization Violation"), std::string::npos)
      << reasons["nats-tls"];
  EXPECT_NE(reasons["rabbit-tls"].find("login refused"), std::string::npos)
      << reasons["rabbit-tls"];

  expect_absent("/v1/status", get(port, "/v1/status"), secrets);
  expect_absent("/metrics", get(port, "/metrics"), secrets);
  auto cli = run({MQDR_BINARY, "status", "-c", (dir / "mqdr.yaml").string(), "--json"}, env);
  EXPECT_EQ(cli.code, 0) << cli.output;
  expect_absent("mqdr status --json", cli.output, secrets);
  EXPECT_EQ(stop(daemon), 0);
  const std::string log = slurp(dir / "run.log");
  EXPECT_NE(log.find("SASL authentication"), std::string::npos) << log.substr(0, 4000);
  expect_absent("the daemon's log", log, secrets);
}

}  // namespace
}  // namespace mqdr::ops_test
