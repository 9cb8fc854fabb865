#include "kafka/rd.hpp"

#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstring>
#include <algorithm>
#include <chrono>
#include <thread>

#include "mqdr/tls_errors.hpp"

namespace mqdr::kafka {

namespace {

// Keeps a connection's failure line (facility FAIL at error level: TLS handshake, SASL
// authentication, ...) in the client's label, with a hint naming the setting to check.
void note_failure(ClientLabel* label, const char* buf) {
  std::string text = buf;
  // librdkafka appends "(after 5ms in state X)": timing noise for an operator.
  if (auto after = text.rfind(" (after "); after != std::string::npos) text.erase(after);
  std::lock_guard lock(label->mu);
  const bool tls_failure = text.find("SSL handshake failed") != std::string::npos ||
                           text.find("certificate verify failed") != std::string::npos;
  if (tls_failure && !label->certificate.empty()) {
    text = label->certificate;
  } else if (text.find("SASL authentication error") != std::string::npos ||
             text.find("SASL handshake failed") != std::string::npos) {
    text += " (check sasl.mechanism, sasl.username and sasl.password in the cluster's properties)";
  } else if (tls_failure) {
    text += " (check tls.ca_file, tls.cert_file and tls.key_file, and that the broker's listener "
            "speaks TLS)";
  } else if (text.find("Disconnected while requesting ApiVersion") != std::string::npos ||
             text.find("Receive failed") != std::string::npos) {
    text += " (is security.protocol right for this listener?)";
  }
  label->problem = std::move(text);
}

// Called by OpenSSL (through librdkafka) for every certificate of the broker's chain; keeps the
// result OpenSSL reached and explains a failure.
int cert_verify_cb(rd_kafka_t*, const char* broker_name, int32_t, int* x509_error, int,
                   const char*, size_t, char* errstr, size_t errstr_size, void* opaque) {
  if (*x509_error == X509_V_OK) return 1;
  std::string broker = broker_name != nullptr ? broker_name : "";
  std::string host = broker;
  if (auto scheme = host.find("://"); scheme != std::string::npos) host.erase(0, scheme + 3);
  if (auto slash = host.find('/'); slash != std::string::npos) host.erase(slash);
  if (auto colon = host.rfind(':'); colon != std::string::npos) host.erase(colon);
  const std::string why = explain_certificate_error(
      *x509_error, X509_verify_cert_error_string(*x509_error), host);
  std::snprintf(errstr, errstr_size, "%s", why.c_str());
  if (auto* label = static_cast<ClientLabel*>(opaque); label != nullptr) {
    std::lock_guard lock(label->mu);
    label->certificate = broker + ": " + why;
  }
  return 0;
}

void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  auto* label = static_cast<ClientLabel*>(rd_kafka_opaque(rk));
  if (label != nullptr && level <= 3 && std::strcmp(fac, "FAIL") == 0) note_failure(label, buf);
  if (label != nullptr && label->on_all_brokers_down && std::strcmp(fac, "ERROR") == 0) {
    // "N/N brokers are down": the cluster is unreachable (said once per transition).
    const char* down = std::strstr(buf, " brokers are down");
    int a = -1, b = -2;
    if (down != nullptr) {
      const char* p = down;
      while (p > buf && *(p - 1) != ' ' && *(p - 1) != ']') --p;
      if (std::sscanf(p, "%d/%d", &a, &b) == 2 && a == b && a > 0) label->on_all_brokers_down(buf);
    }
  }
  const std::string& who = label != nullptr ? label->label : std::string("kafka");
  // librdkafka levels are syslog levels; its "error" lines are transient connection noise that
  // it recovers from by itself, so they are warnings here.
  if (level <= 4) {
    spdlog::warn("{} librdkafka {}: {}", who, fac, buf);
  } else if (level <= 6) {
    spdlog::info("{} librdkafka {}: {}", who, fac, buf);
  } else {
    spdlog::debug("{} librdkafka {}: {}", who, fac, buf);
  }
}

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;

struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

struct OptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};
using OptionsPtr = std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter>;

struct ListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using ListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, ListDeleter>;

OptionsPtr make_options(rd_kafka_t* rk, rd_kafka_admin_op_t op, int timeout_ms) {
  OptionsPtr o(rd_kafka_AdminOptions_new(rk, op));
  char errstr[256];
  rd_kafka_AdminOptions_set_request_timeout(o.get(), timeout_ms, errstr, sizeof errstr);
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_CREATEPARTITIONS ||
      op == RD_KAFKA_ADMIN_OP_ALTERCONFIGS) {
    rd_kafka_AdminOptions_set_operation_timeout(o.get(), timeout_ms, errstr, sizeof errstr);
  }
  return o;
}

// Waits for the admin result on `q`; throws on timeout or a request-level error.
EventPtr wait_result(rd_kafka_t* rk, rd_kafka_queue_t* q, int timeout_ms, const char* what) {
  EventPtr ev(rd_kafka_queue_poll(q, timeout_ms + 2000));
  if (!ev) {
    throw KafkaError(std::string(what) + ": no answer from the cluster within " +
                         std::to_string(timeout_ms) + " ms" + connection_problem(rk),
                     true);
  }
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    auto err = rd_kafka_event_error(ev.get());
    const bool transport = err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                           err == RD_KAFKA_RESP_ERR__TRANSPORT ||
                           err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN;
    throw KafkaError(std::string(what) + ": " + rd_kafka_event_error_string(ev.get()) +
                         (transport ? connection_problem(rk) : std::string()),
                     err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
                         err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN);
  }
  return ev;
}

void set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) !=
      RD_KAFKA_CONF_OK) {
    // errstr may quote the value for enum properties; name only the property.
    throw KafkaError("invalid librdkafka property '" + name + "'", false);
  }
}

}  // namespace

void HandleDeleter::operator()(rd_kafka_t* rk) const {
  if (rk != nullptr) rd_kafka_destroy(rk);
}

std::string err_text(rd_kafka_resp_err_t err) { return rd_kafka_err2str(err); }

std::string connection_problem(rd_kafka_t* rk) {
  const auto* label = rk != nullptr ? static_cast<const ClientLabel*>(rd_kafka_opaque(rk)) : nullptr;
  if (label == nullptr) return {};
  std::lock_guard lock(label->mu);
  if (!label->problem.empty()) return "; last connection problem: " + label->problem;
  if (!label->certificate.empty()) return "; last connection problem: " + label->certificate;
  return {};
}

bool is_permanent_produce_error(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return true;
    default:
      return false;
  }
}

ConfPtr make_conf(const ClusterConfig& cluster, const std::map<std::string, std::string>& base,
                  const std::map<std::string, std::string>& overrides, ClientLabel* label) {
  ConfPtr conf(rd_kafka_conf_new());
  set(conf.get(), "bootstrap.servers", cluster.kafka.bootstrap_servers);
  const auto& tls = cluster.tls;
  if (tls.enabled) {
    set(conf.get(), "security.protocol", "ssl");
    if (!tls.ca_file.empty()) set(conf.get(), "ssl.ca.location", tls.ca_file);
    if (!tls.cert_file.empty()) set(conf.get(), "ssl.certificate.location", tls.cert_file);
    if (!tls.key_file.empty()) set(conf.get(), "ssl.key.location", tls.key_file);
    if (!tls.key_password.empty()) set(conf.get(), "ssl.key.password", tls.key_password.reveal());
    set(conf.get(), "enable.ssl.certificate.verification", tls.verify ? "true" : "false");
    set(conf.get(), "ssl.endpoint.identification.algorithm", tls.verify_hostname ? "https" : "none");
  }
  for (const auto& [k, v] : base) set(conf.get(), k, v);
  for (const auto& [k, v] : cluster.kafka.properties) set(conf.get(), k, v);
  for (const auto& [k, v] : overrides) set(conf.get(), k, v);
  rd_kafka_conf_set_log_cb(conf.get(), log_cb);
  // Only consulted while enable.ssl.certificate.verification is on; keeps OpenSSL's verdict.
  if (rd_kafka_conf_set_ssl_cert_verify_cb(conf.get(), cert_verify_cb) != RD_KAFKA_CONF_OK) {
    throw KafkaError("this librdkafka cannot check certificates (built without SSL)", false);
  }
  rd_kafka_conf_set_opaque(conf.get(), label);
  return conf;
}

Handle make_client(rd_kafka_type_t type, ConfPtr conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr) throw KafkaError(std::string("cannot create Kafka client: ") + errstr, false);
  (void)conf.release();  // owned by rk now
  return Handle(rk);
}

ClusterMeta fetch_metadata(rd_kafka_t* rk, int timeout_ms, const std::string* topic) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = nullptr;
  if (topic != nullptr) rkt = rd_kafka_topic_new(rk, topic->c_str(), nullptr);
  auto err = rd_kafka_metadata(rk, topic == nullptr ? 1 : 0, rkt, &md, timeout_ms);
  if (rkt != nullptr) rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError("metadata request failed: " + err_text(err) + connection_problem(rk), true);
  }
  ClusterMeta out;
  out.brokers = md->broker_cnt;
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    out.topics[t.topic] = TopicMeta{t.topic, t.partition_cnt};
  }
  rd_kafka_metadata_destroy(md);
  return out;
}

std::map<std::string, TopicConfigs> describe_topic_configs(rd_kafka_t* rk,
                                                           const std::vector<std::string>& topics,
                                                           int timeout_ms) {
  std::map<std::string, TopicConfigs> out;
  if (topics.empty()) return out;
  std::vector<rd_kafka_ConfigResource_t*> res;
  for (const auto& t : topics) res.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t.c_str()));
  QueuePtr q(rd_kafka_queue_new(rk));
  auto opts = make_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout_ms);
  rd_kafka_DescribeConfigs(rk, res.data(), res.size(), opts.get(), q.get());
  rd_kafka_ConfigResource_destroy_array(res.data(), res.size());
  auto ev = wait_result(rk, q.get(), timeout_ms, "describe topic configs");
  const auto* result = rd_kafka_event_DescribeConfigs_result(ev.get());
  size_t n = 0;
  const rd_kafka_ConfigResource_t** rs = rd_kafka_DescribeConfigs_result_resources(result, &n);
  for (size_t i = 0; i < n; ++i) {
    std::string name = rd_kafka_ConfigResource_name(rs[i]);
    if (rd_kafka_ConfigResource_error(rs[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    TopicConfigs& cfg = out[name];
    size_t m = 0;
    const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(rs[i], &m);
    for (size_t j = 0; j < m; ++j) {
      if (rd_kafka_ConfigEntry_source(entries[j]) != RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG) {
        continue;
      }
      const char* v = rd_kafka_ConfigEntry_value(entries[j]);
      if (v == nullptr || rd_kafka_ConfigEntry_is_sensitive(entries[j])) continue;
      cfg[rd_kafka_ConfigEntry_name(entries[j])] = v;
    }
  }
  return out;
}

void create_topics(rd_kafka_t* rk, const std::vector<NewTopicSpec>& topics, int timeout_ms) {
  if (topics.empty()) return;
  std::vector<rd_kafka_NewTopic_t*> nts;
  char errstr[512];
  for (const auto& t : topics) {
    rd_kafka_NewTopic_t* nt =
        rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, -1, errstr, sizeof errstr);
    if (nt == nullptr) {
      rd_kafka_NewTopic_destroy_array(nts.data(), nts.size());
      throw KafkaError("cannot create topic '" + t.name + "': " + errstr, false);
    }
    for (const auto& [k, v] : t.configs) rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
    nts.push_back(nt);
  }
  QueuePtr q(rd_kafka_queue_new(rk));
  auto opts = make_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
  rd_kafka_CreateTopics(rk, nts.data(), nts.size(), opts.get(), q.get());
  rd_kafka_NewTopic_destroy_array(nts.data(), nts.size());
  auto ev = wait_result(rk, q.get(), timeout_ms, "create topics");
  size_t n = 0;
  const rd_kafka_topic_result_t** rs =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    auto err = rd_kafka_topic_result_error(rs[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) continue;
    const char* msg = rd_kafka_topic_result_error_string(rs[i]);
    throw KafkaError(std::string("cannot create topic '") + rd_kafka_topic_result_name(rs[i]) +
                         "': " + (msg != nullptr ? msg : err_text(err).c_str()),
                     err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT ||
                         err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                         err == RD_KAFKA_RESP_ERR_NOT_CONTROLLER);
  }
}

void create_partitions(rd_kafka_t* rk, const std::string& topic, int partitions, int timeout_ms) {
  char errstr[512];
  rd_kafka_NewPartitions_t* np =
      rd_kafka_NewPartitions_new(topic.c_str(), static_cast<size_t>(partitions), errstr, sizeof errstr);
  if (np == nullptr) throw KafkaError("cannot grow topic '" + topic + "': " + errstr, false);
  QueuePtr q(rd_kafka_queue_new(rk));
  auto opts = make_options(rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS, timeout_ms);
  rd_kafka_CreatePartitions(rk, &np, 1, opts.get(), q.get());
  rd_kafka_NewPartitions_destroy(np);
  auto ev = wait_result(rk, q.get(), timeout_ms, "create partitions");
  size_t n = 0;
  const rd_kafka_topic_result_t** rs = rd_kafka_CreatePartitions_result_topics(
      rd_kafka_event_CreatePartitions_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    auto err = rd_kafka_topic_result_error(rs[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    if (err == RD_KAFKA_RESP_ERR_INVALID_PARTITIONS) {
      // Already that many (or more): a concurrent instance grew it first.
      auto md = fetch_metadata(rk, timeout_ms, &topic);
      auto it = md.topics.find(topic);
      if (it != md.topics.end() && it->second.partitions >= partitions) continue;
    }
    const char* msg = rd_kafka_topic_result_error_string(rs[i]);
    throw KafkaError("cannot grow topic '" + topic + "' to " + std::to_string(partitions) +
                         " partitions: " + (msg != nullptr ? msg : err_text(err).c_str()),
                     false);
  }
}

void alter_topic_configs(rd_kafka_t* rk, const std::string& topic, const TopicConfigs& configs,
                         int timeout_ms) {
  rd_kafka_ConfigResource_t* res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  for (const auto& [k, v] : configs) rd_kafka_ConfigResource_set_config(res, k.c_str(), v.c_str());
  QueuePtr q(rd_kafka_queue_new(rk));
  auto opts = make_options(rk, RD_KAFKA_ADMIN_OP_ALTERCONFIGS, timeout_ms);
  rd_kafka_AlterConfigs(rk, &res, 1, opts.get(), q.get());
  rd_kafka_ConfigResource_destroy(res);
  auto ev = wait_result(rk, q.get(), timeout_ms, "alter topic configs");
  size_t n = 0;
  const rd_kafka_ConfigResource_t** rs =
      rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    auto err = rd_kafka_ConfigResource_error(rs[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    const char* msg = rd_kafka_ConfigResource_error_string(rs[i]);
    throw KafkaError("cannot set configs of topic '" + topic + "': " +
                         (msg != nullptr ? msg : err_text(err).c_str()),
                     false);
  }
}

std::vector<GroupListing> list_groups(rd_kafka_t* rk, int timeout_ms) {
  QueuePtr q(rd_kafka_queue_new(rk));
  auto opts = make_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, timeout_ms);
  rd_kafka_ListConsumerGroups(rk, opts.get(), q.get());
  auto ev = wait_result(rk, q.get(), timeout_ms, "list consumer groups");
  const auto* result = rd_kafka_event_ListConsumerGroups_result(ev.get());
  size_t nerr = 0;
  const rd_kafka_error_t** errs = rd_kafka_ListConsumerGroups_result_errors(result, &nerr);
  if (nerr > 0) {
    // A partial answer would make absent groups look inactive: refuse it.
    throw KafkaError(std::string("list consumer groups: ") + rd_kafka_error_string(errs[0]), true);
  }
  size_t n = 0;
  const rd_kafka_ConsumerGroupListing_t** gs = rd_kafka_ListConsumerGroups_result_valid(result, &n);
  std::vector<GroupListing> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(GroupListing{rd_kafka_ConsumerGroupListing_group_id(gs[i]),
                               rd_kafka_consumer_group_state_name(
                                   rd_kafka_ConsumerGroupListing_state(gs[i])),
                               rd_kafka_ConsumerGroupListing_is_simple_consumer_group(gs[i]) != 0});
  }
  return out;
}

GroupOffsets list_group_offsets(rd_kafka_t* rk, const std::string& group, int timeout_ms) {
  QueuePtr q(rd_kafka_queue_new(rk));
  auto opts = make_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, timeout_ms);
  rd_kafka_error_t* e = rd_kafka_AdminOptions_set_require_stable_offsets(opts.get(), 1);
  if (e != nullptr) rd_kafka_error_destroy(e);
  rd_kafka_ListConsumerGroupOffsets_t* req = rd_kafka_ListConsumerGroupOffsets_new(group.c_str(), nullptr);
  rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, opts.get(), q.get());
  rd_kafka_ListConsumerGroupOffsets_destroy(req);
  auto ev = wait_result(rk, q.get(), timeout_ms, "list consumer group offsets");
  size_t n = 0;
  const rd_kafka_group_result_t** gs = rd_kafka_ListConsumerGroupOffsets_result_groups(
      rd_kafka_event_ListConsumerGroupOffsets_result(ev.get()), &n);
  GroupOffsets out;
  for (size_t i = 0; i < n; ++i) {
    if (const rd_kafka_error_t* ge = rd_kafka_group_result_error(gs[i]); ge != nullptr) {
      throw KafkaError("offsets of group '" + group + "': " + rd_kafka_error_string(ge), true);
    }
    const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(gs[i]);
    for (int j = 0; parts != nullptr && j < parts->cnt; ++j) {
      const auto& p = parts->elems[j];
      if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR || p.offset < 0) continue;
      out[{p.topic, p.partition}] = p.offset;
    }
  }
  return out;
}

void alter_group_offsets(rd_kafka_t* rk, const std::string& group, const GroupOffsets& offsets,
                         int timeout_ms) {
  if (offsets.empty()) return;
  // The group's coordinator may be moving or loading (a broker that just started, a partition
  // leader change of __consumer_offsets): librdkafka 2.0's admin API does not retry that itself.
  auto transient = [](rd_kafka_resp_err_t e) {
    return e == RD_KAFKA_RESP_ERR_NOT_COORDINATOR ||
           e == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
           e == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE;
  };
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const int left = static_cast<int>(std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(until -
                                                                 std::chrono::steady_clock::now())
               .count()));
    ListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
    for (const auto& [tp, off] : offsets) {
      rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second)->offset = off;
    }
    QueuePtr q(rd_kafka_queue_new(rk));
    auto opts = make_options(rk, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, left);
    rd_kafka_AlterConsumerGroupOffsets_t* req =
        rd_kafka_AlterConsumerGroupOffsets_new(group.c_str(), list.get());
    rd_kafka_AlterConsumerGroupOffsets(rk, &req, 1, opts.get(), q.get());
    rd_kafka_AlterConsumerGroupOffsets_destroy(req);
    auto ev = wait_result(rk, q.get(), left, "alter consumer group offsets");
    size_t n = 0;
    const rd_kafka_group_result_t** gs = rd_kafka_AlterConsumerGroupOffsets_result_groups(
        rd_kafka_event_AlterConsumerGroupOffsets_result(ev.get()), &n);
    std::string error;
    bool retry = false;
    for (size_t i = 0; i < n && error.empty(); ++i) {
      if (const rd_kafka_error_t* ge = rd_kafka_group_result_error(gs[i]); ge != nullptr) {
        retry = transient(rd_kafka_error_code(ge));
        error = "commit offsets of group '" + group + "': " + rd_kafka_error_string(ge);
        break;
      }
      const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(gs[i]);
      for (int j = 0; parts != nullptr && j < parts->cnt; ++j) {
        if (parts->elems[j].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          retry = transient(parts->elems[j].err);
          error = "commit offsets of group '" + group + "' " + parts->elems[j].topic + "[" +
                  std::to_string(parts->elems[j].partition) + "]: " + err_text(parts->elems[j].err);
          break;
        }
      }
    }
    if (error.empty()) return;
    if (!retry || std::chrono::steady_clock::now() + std::chrono::milliseconds(200) >= until) {
      throw KafkaError(error, true);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::pair<std::int64_t, std::int64_t> query_watermarks(rd_kafka_t* rk, const std::string& topic,
                                                       std::int32_t partition, int timeout_ms) {
  std::int64_t lo = 0, hi = 0;
  auto err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &lo, &hi, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError("watermarks of " + topic + "[" + std::to_string(partition) +
                         "]: " + err_text(err),
                     true);
  }
  return {lo, hi};
}

}  // namespace mqdr::kafka
