// Endpoints of the real-broker harness (tests/harness/harness.sh) for integration tests.
//
// Owns nothing; header-only; every function may be called from any thread (Endpoints::get() is
// computed once, thread-safely).
//
// Where the values come from, first match wins, per endpoint:
//   1. the environment (MQDR_KAFKA_A, ...; `eval "$(tests/harness/harness.sh env)"` sets them),
//   2. ${MQDR_HARNESS_DIR:-/tmp/mqdr-harness}/env, written by `harness.sh up` (so a 3-node
//      kafka-a or a port offset is picked up without exporting anything),
//   3. the harness defaults.
//
// Typical use in a GoogleTest test:
//
//   #include "tests/harness/endpoints.hpp"
//   TEST(KafkaMirror, CopiesRecords) {
//     const auto& ep = mqdr::test::Endpoints::get();
//     MQDR_REQUIRE_BROKER(ep.kafka_a);   // FAIL (or SKIP with MQDR_ALLOW_SKIP=1) when down
//     ...
//     ASSERT_EQ(mqdr::test::harness("kill9 kafka-a"), 0);
//     ASSERT_EQ(mqdr::test::harness("up kafka-a"), 0);
//   }
//
// MQDR_SOURCE_DIR (a compile definition, the repository root) locates harness.sh when
// MQDR_HARNESS_SH is not set.
#pragma once

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mqdr::test {

// Every endpoint of the harness. Kafka values are bootstrap lists ("host:port[,host:port]"),
// NATS values are URLs ("nats://host:port"), RabbitMQ values are AMQP URIs carrying the mqdr user
// and password and no vhost (that is, vhost "/"; append "/orders" for the second vhost) and
// management base URLs.
struct Endpoints {
  std::string kafka_a;
  std::string kafka_b;
  int kafka_a_nodes = 1;
  std::string nats_a;
  std::string nats_b;
  std::string nats_hub;   // JetStream domain "hub"; started by `harness.sh up nats-native`
  std::string nats_leaf;  // JetStream domain "leaf", leafnode of nats_hub
  std::string nats_a_monitor;
  std::string nats_b_monitor;
  std::string nats_hub_monitor;
  std::string nats_leaf_monitor;
  std::string rabbit_a;
  std::string rabbit_a_mgmt;
  std::string rabbit_b;
  std::string rabbit_b_mgmt;
  std::string rabbit_user;
  std::string rabbit_password;
  // TLS/SASL brokers (`harness.sh up tls`, part of `up all`). Certificates made by openssl at up
  // time: ca.pem signs server.pem (SANs localhost, 127.0.0.1) and client.pem; wrong-ca.pem is an
  // unrelated CA. The *_other_host endpoints listen on 127.0.0.2, which the certificate does
  // not name.
  std::string tls_dir;
  std::string tls_ca;
  std::string tls_wrong_ca;
  std::string tls_client_cert;
  std::string tls_client_key;
  std::string kafka_tls_plaintext;  // the TLS broker's PLAINTEXT listener (test set-up)
  std::string kafka_tls_ssl;        // SSL, client certificate required
  std::string kafka_tls_sasl_ssl;   // SASL_SSL: SCRAM-SHA-512 and PLAIN
  std::string kafka_tls_other_host; // SSL on 127.0.0.2, no client certificate asked
  std::string kafka_scram_user;
  std::string kafka_scram_password;
  std::string kafka_plain_user;
  std::string kafka_plain_password;
  std::string nats_tls;             // tls://, client certificate and token required
  std::string nats_tls_monitor;
  std::string nats_tls_token;
  std::string rabbit_a_tls;             // amqps:// of rabbit-a (no credentials, vhost "/"),
  std::string rabbit_a_tls_other_host;  // client certificate required on both
  std::string rabbit_tls_user;
  std::string rabbit_tls_password;
  std::string harness_dir;
  std::string harness_sh;

  static const Endpoints& get() {
    static const Endpoints instance = load();
    return instance;
  }

  // Reads the values again (after a test changed the environment); prefer get().
  static Endpoints load() {
    const std::string dir = env_or("MQDR_HARNESS_DIR", "/tmp/mqdr-harness");
    const auto file = read_env_file(dir + "/env");
    auto pick = [&](const char* name, const char* fallback) -> std::string {
      if (const char* v = std::getenv(name); v != nullptr && *v != '\0') return v;
      if (auto it = file.find(name); it != file.end() && !it->second.empty()) return it->second;
      return fallback;
    };
    Endpoints e;
    e.harness_dir = dir;
    e.kafka_a = pick("MQDR_KAFKA_A", "127.0.0.1:19092");
    e.kafka_b = pick("MQDR_KAFKA_B", "127.0.0.1:29092");
    e.kafka_a_nodes = std::atoi(pick("MQDR_KAFKA_A_NODES", "1").c_str());
    e.nats_a = pick("MQDR_NATS_A", "nats://127.0.0.1:14222");
    e.nats_b = pick("MQDR_NATS_B", "nats://127.0.0.1:24222");
    e.nats_hub = pick("MQDR_NATS_HUB", "nats://127.0.0.1:34222");
    e.nats_leaf = pick("MQDR_NATS_LEAF", "nats://127.0.0.1:44222");
    e.nats_a_monitor = pick("MQDR_NATS_A_MONITOR", "http://127.0.0.1:18222");
    e.nats_b_monitor = pick("MQDR_NATS_B_MONITOR", "http://127.0.0.1:28222");
    e.nats_hub_monitor = pick("MQDR_NATS_HUB_MONITOR", "http://127.0.0.1:38222");
    e.nats_leaf_monitor = pick("MQDR_NATS_LEAF_MONITOR", "http://127.0.0.1:48222");
    e.rabbit_a = pick("MQDR_RABBIT_A", "amqp://mqdr:mqdr-secret@127.0.0.1:35672");
    e.rabbit_a_mgmt = pick("MQDR_RABBIT_A_MGMT", "http://127.0.0.1:35673");
    e.rabbit_b = pick("MQDR_RABBIT_B", "amqp://mqdr:mqdr-secret@127.0.0.1:45672");
    e.rabbit_b_mgmt = pick("MQDR_RABBIT_B_MGMT", "http://127.0.0.1:45673");
    e.rabbit_user = pick("MQDR_RABBIT_USER", "mqdr");
    e.rabbit_password = pick("MQDR_RABBIT_PASSWORD", "mqdr-secret");
    e.tls_dir = pick("MQDR_TLS_DIR", (dir + "/tls").c_str());
    e.tls_ca = pick("MQDR_TLS_CA", (e.tls_dir + "/ca.pem").c_str());
    e.tls_wrong_ca = pick("MQDR_TLS_WRONG_CA", (e.tls_dir + "/wrong-ca.pem").c_str());
    e.tls_client_cert = pick("MQDR_TLS_CLIENT_CERT", (e.tls_dir + "/client.pem").c_str());
    e.tls_client_key = pick("MQDR_TLS_CLIENT_KEY", (e.tls_dir + "/client.key").c_str());
    e.kafka_tls_plaintext = pick("MQDR_KAFKA_TLS_PLAINTEXT", "127.0.0.1:17092");
    e.kafka_tls_ssl = pick("MQDR_KAFKA_TLS_SSL", "127.0.0.1:17094");
    e.kafka_tls_sasl_ssl = pick("MQDR_KAFKA_TLS_SASL_SSL", "127.0.0.1:17095");
    e.kafka_tls_other_host = pick("MQDR_KAFKA_TLS_OTHER_HOST", "127.0.0.2:17096");
    e.kafka_scram_user = pick("MQDR_KAFKA_SCRAM_USER", "mqdr-scram");
    e.kafka_scram_password = pick("MQDR_KAFKA_SCRAM_PASSWORD", "scram-pw-h4rn3ss-51");
    e.kafka_plain_user = pick("MQDR_KAFKA_PLAIN_USER", "mqdr-plain");
    e.kafka_plain_password = pick("MQDR_KAFKA_PLAIN_PASSWORD", "plain-pw-h4rn3ss-52");
    e.nats_tls = pick("MQDR_NATS_TLS", "tls://127.0.0.1:16222");
    e.nats_tls_monitor = pick("MQDR_NATS_TLS_MONITOR", "http://127.0.0.1:16223");
    e.nats_tls_token = pick("MQDR_NATS_TLS_TOKEN", "nats-token-h4rn3ss-53");
    e.rabbit_a_tls = pick("MQDR_RABBIT_A_TLS", "amqps://127.0.0.1:16671");
    e.rabbit_a_tls_other_host = pick("MQDR_RABBIT_A_TLS_OTHER_HOST", "amqps://127.0.0.2:16672");
    e.rabbit_tls_user = pick("MQDR_RABBIT_TLS_USER", "mqdr-tls");
    e.rabbit_tls_password = pick("MQDR_RABBIT_TLS_PASSWORD", "rabbit-pw-h4rn3ss-54");
    e.harness_sh = pick("MQDR_HARNESS_SH", default_harness_sh().c_str());
    return e;
  }

  static std::string env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return (v != nullptr && *v != '\0') ? std::string(v) : std::string(fallback);
  }

  static std::string default_harness_sh() {
#ifdef MQDR_SOURCE_DIR
    return std::string(MQDR_SOURCE_DIR) + "/tests/harness/harness.sh";
#else
    return "tests/harness/harness.sh";
#endif
  }

  // Parses the `export NAME='value'` lines written by `harness.sh env`; a missing file is empty.
  static std::map<std::string, std::string> read_env_file(const std::string& path) {
    std::map<std::string, std::string> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      std::string_view l = line;
      if (l.rfind("export ", 0) == 0) l.remove_prefix(7);
      const auto eq = l.find('=');
      if (eq == std::string_view::npos) continue;
      std::string_view value = l.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') {
        value = value.substr(1, value.size() - 2);
      }
      out.emplace(std::string(l.substr(0, eq)), std::string(value));
    }
    return out;
  }
};

// "host:port" of the first address in an endpoint: accepts "host:port", "h1:p1,h2:p2",
// "nats://host:port", "amqp://user:pass@host:port/vhost", "http://host:port/path".
inline std::string host_port_of(std::string_view endpoint) {
  if (auto comma = endpoint.find(','); comma != std::string_view::npos) {
    endpoint = endpoint.substr(0, comma);
  }
  if (auto scheme = endpoint.find("://"); scheme != std::string_view::npos) {
    endpoint.remove_prefix(scheme + 3);
  }
  if (auto slash = endpoint.find('/'); slash != std::string_view::npos) {
    endpoint = endpoint.substr(0, slash);
  }
  if (auto at = endpoint.rfind('@'); at != std::string_view::npos) endpoint.remove_prefix(at + 1);
  return std::string(endpoint);
}

// True when a TCP connection to the endpoint's first "host:port" succeeds within `timeout`.
inline bool reachable(std::string_view endpoint,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
  const std::string hp = host_port_of(endpoint);
  const auto colon = hp.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = hp.substr(0, colon);
  const std::string port = hp.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return false;
  bool ok = false;
  for (addrinfo* ai = res; ai != nullptr && !ok; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            ai->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
        int so_error = 0;
        socklen_t len = sizeof so_error;
        ok = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) == 0 && so_error == 0;
      }
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return ok;
}

// MQDR_ALLOW_SKIP=1 lets a test skip when its broker is down; otherwise it fails.
inline bool skip_allowed() {
  const char* v = std::getenv("MQDR_ALLOW_SKIP");
  return v != nullptr && std::string_view(v) == "1";
}

// Empty when the endpoint answers; otherwise a message saying what to run.
inline std::string unreachable_reason(std::string_view endpoint) {
  if (reachable(endpoint)) return {};
  return "broker " + host_port_of(endpoint) +
         " is not reachable: start the brokers with `tests/harness/harness.sh up` (and "
         "`harness.sh up nats-native` for the hub/leaf pair, `harness.sh up tls` for the TLS/SASL "
         "brokers; `up all` starts everything), or set MQDR_ALLOW_SKIP=1 to skip the tests that "
         "need them";
}

// Runs `harness.sh ARGS` (e.g. "kill9 kafka-a", "up kafka-a") and returns its exit status
// (-1 when it could not run or was killed by a signal). Output goes to the test's output.
inline int harness(std::string_view args) {
  const std::string cmd = "'" + Endpoints::get().harness_sh + "' " + std::string(args);
  const int rc = std::system(cmd.c_str());
  if (rc == -1 || !WIFEXITED(rc)) return -1;
  return WEXITSTATUS(rc);
}

}  // namespace mqdr::test

// In a TEST body or SetUp(): FAIL when the broker behind ENDPOINT is down, or SKIP when
// MQDR_ALLOW_SKIP=1. Needs <gtest/gtest.h>; returns from the enclosing void function.
#define MQDR_REQUIRE_BROKER(endpoint)                                            \
  do {                                                                           \
    if (const std::string mqdr_why_ = ::mqdr::test::unreachable_reason(endpoint); \
        !mqdr_why_.empty()) {                                                    \
      if (::mqdr::test::skip_allowed()) {                                        \
        GTEST_SKIP() << mqdr_why_;                                               \
      } else {                                                                   \
        FAIL() << mqdr_why_;                                                     \
      }                                                                          \
    }                                                                            \
  } while (0)
