// A real Prometheus server (Debian package `prometheus`) scrapes a real `mqdr run` mirroring
// between the harness brokers; the test reads the SPEC metrics back through Prometheus's own
// HTTP API, checks that the alert rules of docker/alerts.yml evaluate cleanly on them and that
// every query of the Grafana dashboard runs.
#include <gtest/gtest.h>
#include <httplib.h>
#include <librdkafka/rdkafka.h>

#include <nlohmann/json.hpp>

#include <regex>
#include <set>

#include "tests/harness/endpoints.hpp"
#include "tests/unit/ops/ops_util.hpp"

namespace mqdr::ops_test {
namespace {

using nlohmann::json;
const fs::path kSource = MQDR_SOURCE_DIR;

// "amqp://user:pass@host:port/vhost" -> {"amqp://user@host:port/vhost", "pass"}
std::pair<std::string, std::string> split_amqp_password(const std::string& uri) {
  std::smatch m;
  if (std::regex_match(uri, m, std::regex(R"((amqps?://[^:@/]+):([^@/]*)@(.*))"))) {
    return {m[1].str() + "@" + m[3].str(), m[2].str()};
  }
  return {uri, ""};
}

// Minimal librdkafka helpers: the test's own client, talking to the harness Kafka.
using KafkaHandle = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;

KafkaHandle kafka_client(rd_kafka_type_t type, const std::string& bootstrap) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) throw std::runtime_error(err);
  return {rk, &rd_kafka_destroy};
}

// Creates `topic` with one partition; returns the error text ("" on success).
std::string create_topic(const std::string& bootstrap, const std::string& topic) {
  auto rk = kafka_client(RD_KAFKA_PRODUCER, bootstrap);
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), 1, 1, err, sizeof err);
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk.get());
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(opts, 15000, err, sizeof err);
  rd_kafka_CreateTopics(rk.get(), &nt, 1, opts, q);
  std::string result = "no answer";
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  if (ev != nullptr) {
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result = rd_kafka_event_error_string(ev);
    } else {
      size_t n = 0;
      const rd_kafka_topic_result_t** res =
          rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
      result = (n == 1 && rd_kafka_topic_result_error(res[0]) == RD_KAFKA_RESP_ERR_NO_ERROR)
                   ? ""
                   : (n == 1 ? rd_kafka_topic_result_error_string(res[0]) : "no topic result");
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(q);
  return result;
}

// Produces `count` records of `size` bytes; returns the error text ("" when all were acked).
std::string produce(const std::string& bootstrap, const std::string& topic, int count,
                    std::size_t size) {
  auto rk = kafka_client(RD_KAFKA_PRODUCER, bootstrap);
  const std::string value(size, 'x');
  for (int i = 0; i < count; ++i) {
    const std::string key = "k" + std::to_string(i);
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                                  RD_KAFKA_V_KEY(key.data(), key.size()),
                                  RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk.get(), 100);
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return rd_kafka_err2str(e);
  }
  if (rd_kafka_flush(rk.get(), 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) return "flush timed out";
  return "";
}

// The Prometheus server of one test: its own port, config and storage, stopped at the end.
class PrometheusServer {
 public:
  PrometheusServer(const TempDir& dir, const std::string& config) : dir_(dir) {
    const auto bin = which("prometheus");
    if (!bin) return;
    port_ = free_port();
    spit(dir / "prometheus.yml", config);
    fs::create_directories(dir / "tsdb");
    proc_ = spawn({bin->string(), "--config.file=" + (dir / "prometheus.yml").string(),
                   "--storage.tsdb.path=" + (dir / "tsdb").string(),
                   "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                   "--log.level=warn"},
                  dir / "prometheus.log");
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_connection_timeout(2, 0);
    client_->set_read_timeout(10, 0);
  }
  ~PrometheusServer() { stop(proc_); }
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  bool ready() {
    auto r = client_->Get("/-/ready");
    return r && r->status == 200;
  }
  json get(const std::string& path, const httplib::Params& params = {}) {
    auto r = client_->Get(path, params, httplib::Headers{});
    if (!r) return json{{"status", "error"}, {"error", "no answer from prometheus"}};
    auto j = json::parse(r->body, nullptr, false);
    if (j.is_discarded()) return json{{"status", "error"}, {"error", r->body}};
    return j;
  }
  // Instant query; the result vector (empty on error).
  json query(const std::string& promql) {
    json j = get("/api/v1/query", {{"query", promql}});
    last_ = j;
    if (j.value("status", "") != "success") return json::array();
    return j["data"]["result"];
  }
  const json& last() const { return last_; }
  std::string log() const { return slurp(dir_ / "prometheus.log"); }

 private:
  const TempDir& dir_;
  int port_ = 0;
  Proc proc_;
  std::unique_ptr<httplib::Client> client_;
  json last_;
};

class PrometheusScrape : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(which("prometheus"))
        << "the Prometheus server is not installed: run scripts/setup.sh (Debian package "
           "prometheus)";
    const auto& ep = test::Endpoints::get();
    MQDR_REQUIRE_BROKER(ep.kafka_a);
    MQDR_REQUIRE_BROKER(ep.kafka_b);
    MQDR_REQUIRE_BROKER(ep.nats_a);
    MQDR_REQUIRE_BROKER(ep.nats_b);
    MQDR_REQUIRE_BROKER(ep.rabbit_a);
    MQDR_REQUIRE_BROKER(ep.rabbit_b);
    suffix = random_suffix();
    admin_port = free_port();
    kafka_a = ep.kafka_a;
    auto [rabbit_a, pass_a] = split_amqp_password(ep.rabbit_a);
    auto [rabbit_b, pass_b] = split_amqp_password(ep.rabbit_b);
    spit(dir / "rabbit-a.pass", pass_a + "\n");
    spit(dir / "rabbit-b.pass", pass_b + "\n");
    fs::permissions(dir / "rabbit-a.pass", fs::perms::owner_read | fs::perms::owner_write);
    fs::permissions(dir / "rabbit-b.pass", fs::perms::owner_read | fs::perms::owner_write);
    topic = "ops-" + suffix + ".orders";
    config = dir / "mqdr.yaml";
    spit(config,
         "version: 1\n"
         "daemon:\n"
         "  state_dir: " + (dir / "state").string() + "\n"
         "  admin: { listen: 127.0.0.1:" + std::to_string(admin_port) + " }\n"
         "  log: { level: info, format: json }\n"
         "  shutdown_timeout: 10s\n"
         "clusters:\n"
         "  kafka-a: { kind: kafka, bootstrap_servers: '" + ep.kafka_a + "' }\n"
         "  kafka-b: { kind: kafka, bootstrap_servers: '" + ep.kafka_b + "' }\n"
         "  nats-a: { kind: nats, servers: ['" + ep.nats_a + "'] }\n"
         "  nats-b: { kind: nats, servers: ['" + ep.nats_b + "'] }\n"
         "  rabbit-a: { kind: rabbitmq, uri: '" + rabbit_a + "', password_file: rabbit-a.pass }\n"
         "  rabbit-b: { kind: rabbitmq, uri: '" + rabbit_b + "', password_file: rabbit-b.pass }\n"
         "mirrors:\n"
         "  - { name: ops-kafka-" + suffix + ", source: kafka-a, target: kafka-b, topics: ['ops-" +
             suffix + "\\..*'] }\n"
         "  - { name: ops-nats-" + suffix + ", source: nats-a, target: nats-b, streams: [OPS_" +
             suffix + "] }\n"
         "  - { name: ops-rabbit-" + suffix + ", source: rabbit-a, target: rabbit-b, exchanges: "
             "[ops-" + suffix + "] }\n");
    mirrors = {"ops-kafka-" + suffix, "ops-nats-" + suffix, "ops-rabbit-" + suffix};
  }
  void TearDown() override { stop(daemon); }

  void start_mqdr() {
    daemon = spawn({MQDR_BINARY, "run", "-c", config.string()}, dir / "mqdr.log");
    httplib::Client admin("127.0.0.1", admin_port);
    ASSERT_TRUE(eventually([&] {
      auto r = admin.Get("/readyz");
      return r && r->status == 200;
    })) << slurp(dir / "mqdr.log");
  }

  std::string prometheus_config() const {
    return "global:\n"
           "  scrape_interval: 1s\n"
           "  evaluation_interval: 1s\n"
           "rule_files:\n"
           "  - " + (kSource / "docker" / "alerts.yml").string() + "\n"
           "scrape_configs:\n"
           "  - job_name: mqdr\n"
           "    static_configs:\n"
           "      - targets: ['127.0.0.1:" + std::to_string(admin_port) + "']\n";
  }

  TempDir dir{"prom"};
  std::string suffix;
  std::string kafka_a;
  std::string topic;
  int admin_port = 0;
  fs::path config;
  std::vector<std::string> mirrors;
  Proc daemon;
};

std::set<std::string> label_values(const json& result, const std::string& label) {
  std::set<std::string> out;
  for (const auto& s : result) {
    if (s["metric"].contains(label)) out.insert(s["metric"][label].get<std::string>());
  }
  return out;
}

TEST_F(PrometheusScrape, SpecMetricsReachPrometheusAndMoveWhileMirroring) {
  ASSERT_EQ(create_topic(kafka_a, topic), "");
  start_mqdr();
  PrometheusServer prom(dir, prometheus_config());
  ASSERT_TRUE(eventually([&] { return prom.ready(); }, 60s)) << prom.log();

  // The mqdr target is scraped successfully.
  json target;
  ASSERT_TRUE(eventually([&] {
    json t = prom.get("/api/v1/targets");
    for (const auto& at : t["data"]["activeTargets"]) {
      if (at["labels"]["job"] == "mqdr") target = at;
    }
    return target.is_object() && target["health"] == "up";
  }, 60s)) << target.dump() << "\n" << prom.log();

  // Build info with this build's version.
  json build;
  ASSERT_TRUE(eventually([&] { return !(build = prom.query("mqdr_build_info")).empty(); }, 30s))
      << prom.last().dump();
  ASSERT_EQ(build.size(), 1U);
  EXPECT_EQ(build[0]["metric"]["version"], MQDR_VERSION);
  EXPECT_EQ(build[0]["value"][1], "1");

  // Every mirror has its counters, every cluster its probe result.
  const std::set<std::string> want_mirrors(mirrors.begin(), mirrors.end());
  for (const char* metric :
       {"mqdr_mirror_records_total", "mqdr_mirror_bytes_total", "mqdr_mirror_errors_total"}) {
    EXPECT_TRUE(eventually([&] { return label_values(prom.query(metric), "mirror") == want_mirrors; },
                           30s))
        << metric << ": " << prom.last().dump();
  }
  const std::set<std::string> clusters = {"kafka-a", "kafka-b", "nats-a", "nats-b", "rabbit-a",
                                          "rabbit-b"};
  EXPECT_TRUE(eventually([&] { return label_values(prom.query("mqdr_cluster_up"), "cluster") == clusters; },
                         60s))
      << "mqdr_cluster_up: " << prom.last().dump();
  // The harness brokers are up, and mqdr's probes say so.
  EXPECT_TRUE(eventually([&] { return label_values(prom.query("mqdr_cluster_up == 1"), "cluster") == clusters; },
                         60s))
      << prom.last().dump();

  // Records written to Kafka A move the Kafka mirror's counters as Prometheus sees them.
  const std::string kafka_mirror = "ops-kafka-" + suffix;
  const std::string sel = "{mirror=\"" + kafka_mirror + "\"}";
  constexpr int kRecords = 2000;
  constexpr std::size_t kValueBytes = 100;
  ASSERT_EQ(produce(kafka_a, topic, kRecords, kValueBytes), "");
  auto value_of = [&](const std::string& promql) {
    json r = prom.query(promql);
    return r.empty() ? -1.0 : std::stod(r[0]["value"][1].get<std::string>());
  };
  EXPECT_TRUE(eventually([&] { return value_of("mqdr_mirror_records_total" + sel) >= kRecords; },
                         120s))
      << prom.last().dump() << "\n" << slurp(dir / "mqdr.log").substr(0, 4000);
  EXPECT_GE(value_of("mqdr_mirror_bytes_total" + sel), double(kRecords) * kValueBytes);
  // The counter was seen rising: several distinct values were scraped, not just the end state.
  EXPECT_TRUE(eventually([&] { return value_of("increase(mqdr_mirror_records_total" + sel + "[5m])") > 0; },
                         30s))
      << prom.last().dump();
  // Lag is reported for the running mirror and drains to zero.
  EXPECT_TRUE(eventually([&] { return value_of("mqdr_mirror_lag_records" + sel) == 0; }, 60s))
      << prom.last().dump();
  EXPECT_GE(value_of("mqdr_mirror_lag_seconds" + sel), 0.0) << prom.last().dump();
  EXPECT_EQ(value_of("mqdr_mirror_errors_total" + sel), 0.0) << prom.last().dump();

  // Prometheus knows every SPEC mirror/cluster/build metric with its type (from the scrape).
  json meta = prom.get("/api/v1/metadata");
  for (const auto& [name, type] : std::vector<std::pair<std::string, std::string>>{
           {"mqdr_mirror_records_total", "counter"},
           {"mqdr_mirror_bytes_total", "counter"},
           {"mqdr_mirror_errors_total", "counter"},
           {"mqdr_mirror_lag_records", "gauge"},
           {"mqdr_mirror_lag_seconds", "gauge"},
           {"mqdr_cluster_up", "gauge"},
           {"mqdr_build_info", "gauge"}}) {
    ASSERT_TRUE(meta["data"].contains(name)) << name << " unknown to Prometheus: " << meta.dump();
    EXPECT_EQ(meta["data"][name][0]["type"], type) << name;
  }

  // The alert rules of docker/alerts.yml load and evaluate without errors on these series.
  json rules;
  ASSERT_TRUE(eventually([&] {
    rules = prom.get("/api/v1/rules");
    std::size_t evaluated = 0;
    for (const auto& g : rules["data"]["groups"]) {
      for (const auto& r : g["rules"]) {
        if (r.value("health", "") != "ok") return false;
        ++evaluated;
      }
    }
    return evaluated >= 10;
  }, 30s)) << rules.dump();
  // Nothing is on fire: the target is up and the clusters are healthy.
  json alerts = prom.get("/api/v1/alerts");
  for (const auto& a : alerts["data"]["alerts"]) {
    EXPECT_NE(a["labels"]["alertname"], "MqdrDown");
    EXPECT_NE(a["labels"]["alertname"], "MqdrClusterDown") << a.dump();
  }

  // Every query of the Grafana dashboard is valid PromQL for this Prometheus; the mirror,
  // cluster and build panels show data.
  const auto dash = json::parse(slurp(kSource / "docker/grafana/dashboards/mqdr.json"));
  for (const auto& p : dash["panels"]) {
    if (p["type"] == "row") continue;
    for (const auto& t : p["targets"]) {
      std::string expr = t["expr"];
      expr = std::regex_replace(expr, std::regex(R"(\$__rate_interval)"), "1m");
      expr = std::regex_replace(expr, std::regex(R"(\$mirror)"), ".*");
      const bool needs_data = expr.find("mqdr_mirror_records_total") != std::string::npos ||
                              expr.find("mqdr_cluster_up") != std::string::npos ||
                              expr.find("mqdr_build_info") != std::string::npos;
      json r;
      EXPECT_TRUE(eventually([&] {
        r = prom.get("/api/v1/query", {{"query", expr}});
        return r["status"] == "success" && (!needs_data || !r["data"]["result"].empty());
      }, 30s)) << p["title"] << ": " << expr << "\n" << r.dump();
    }
  }
}

}  // namespace
}  // namespace mqdr::ops_test
