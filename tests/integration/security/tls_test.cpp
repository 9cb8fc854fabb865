// TLS and SASL to the three brokers, through mqdr's own clients: each cluster is written as YAML,
// loaded by the real config loader and checked by the broker kind's Probe from the
// BrokerRegistry. The brokers are the harness's TLS/SASL ones (`harness.sh up tls`): a right CA
// (and a client certificate where the broker asks for one) connects; a wrong CA, a host name the
// certificate does not carry and a wrong password are refused with a message that says what is
// wrong and never contains a password.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <string>

#include "mqdr/config_loader.hpp"
#include "mqdr/kafka.hpp"
#include "mqdr/nats.hpp"
#include "mqdr/rabbitmq.hpp"
#include "nats/client.hpp"
#include "tests/harness/endpoints.hpp"
#include "tests/unit/ops/ops_util.hpp"

namespace mqdr {
namespace {

using namespace std::chrono_literals;
using test::Endpoints;

const std::string kWrongPassword = "wrong-pw-zq81x";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The cluster `c` of a config holding only `cluster_yaml` (the body of `clusters.c`).
ClusterConfig cluster_from_yaml(const std::string& cluster_yaml) {
  const std::string text = "version: 1\n"
                           "daemon: { state_dir: /tmp/mqdr-security-test }\n"
                           "clusters:\n"
                           "  c:\n" + cluster_yaml;
  Config cfg = config::load_string(text, "security-test.yaml");
  return cfg.clusters.at("c");
}

ProbeResult probe(const ClusterConfig& cluster, Duration timeout = 8s) {
  BrokerRegistry registry;
  kafka::register_kind(registry);
  nats::register_kind(registry);
  rabbitmq::register_kind(registry);
  const BrokerKind* kind = registry.find(cluster.kind);
  if (kind == nullptr || !kind->make_probe) return ProbeResult{false, 0, "no probe for the kind"};
  ProbePtr p = kind->make_probe(cluster);
  // A first check may race the client's first connection; the verdict is the second one's.
  ProbeResult r = p->check(timeout);
  if (!r.ok) r = p->check(timeout);
  if (!r.ok) std::cout << "  probe of " << to_string(cluster.kind) << ": " << r.message << "\n";
  return r;
}

// Every password and token the tests use: none may appear in a probe's message.
void expect_no_secret(const std::string& message) {
  const auto& ep = Endpoints::get();
  for (const std::string& secret : {ep.kafka_scram_password, ep.kafka_plain_password,
                                    ep.nats_tls_token, ep.rabbit_tls_password, kWrongPassword}) {
    EXPECT_EQ(message.find(secret), std::string::npos)
        << "the message discloses a secret: " << message;
  }
}

std::string tls_block(const std::string& ca, bool client_cert, const std::string& extra = "") {
  const auto& ep = Endpoints::get();
  std::string s = "    tls:\n      ca_file: " + ca + "\n";
  if (client_cert) {
    s += "      cert_file: " + ep.tls_client_cert + "\n      key_file: " + ep.tls_client_key + "\n";
  }
  return s + extra;
}

// --- Kafka ----------------------------------------------------------------------------------

class KafkaTls : public ::testing::Test {
 protected:
  void SetUp() override {
    MQDR_REQUIRE_BROKER(Endpoints::get().kafka_tls_sasl_ssl);
  }
  static std::string sasl(const std::string& mechanism, const std::string& user,
                          const std::string& password, const std::string& ca,
                          const std::string& bootstrap = Endpoints::get().kafka_tls_sasl_ssl) {
    return "    kind: kafka\n"
           "    bootstrap_servers: " + bootstrap + "\n"
           "    properties:\n"
           "      security.protocol: SASL_SSL\n"
           "      sasl.mechanism: " + mechanism + "\n"
           "      sasl.username: " + user + "\n"
           "      sasl.password: " + password + "\n" +
           tls_block(ca, false);
  }
};

TEST_F(KafkaTls, ClientCertificateAndRightCaConnect) {
  const auto& ep = Endpoints::get();
  auto r = probe(cluster_from_yaml("    kind: kafka\n    bootstrap_servers: " + ep.kafka_tls_ssl +
                                   "\n" + tls_block(ep.tls_ca, true)));
  EXPECT_TRUE(r.ok) << r.message;
}

TEST_F(KafkaTls, ScramSha512Connects) {
  const auto& ep = Endpoints::get();
  auto r = probe(cluster_from_yaml(
      sasl("SCRAM-SHA-512", ep.kafka_scram_user, ep.kafka_scram_password, ep.tls_ca)));
  EXPECT_TRUE(r.ok) << r.message;
}

TEST_F(KafkaTls, PlainConnects) {
  const auto& ep = Endpoints::get();
  auto r = probe(cluster_from_yaml(
      sasl("PLAIN", ep.kafka_plain_user, ep.kafka_plain_password, ep.tls_ca)));
  EXPECT_TRUE(r.ok) << r.message;
}

TEST_F(KafkaTls, WrongCaIsRefusedAndSaysSo) {
  const auto& ep = Endpoints::get();
  auto r = probe(cluster_from_yaml(
                     sasl("SCRAM-SHA-512", ep.kafka_scram_user, ep.kafka_scram_password,
                          ep.tls_wrong_ca)),
                 4s);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(lower(r.message).find("certificate verify failed"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("tls.ca_file"), std::string::npos) << r.message;
  expect_no_secret(r.message);
}

TEST_F(KafkaTls, HostNameNotInTheCertificateIsRefused) {
  const auto& ep = Endpoints::get();
  const std::string yaml = "    kind: kafka\n    bootstrap_servers: " + ep.kafka_tls_other_host + "\n";
  auto r = probe(cluster_from_yaml(yaml + tls_block(ep.tls_ca, false)), 4s);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(lower(r.message).find("certificate verify failed"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("does not name '127.0.0.2'"), std::string::npos) << r.message;
  // The same address with the host name check off: the chain is still verified, and accepted.
  auto off = probe(cluster_from_yaml(
      yaml + tls_block(ep.tls_ca, false, "      verify_hostname: false\n")));
  EXPECT_TRUE(off.ok) << off.message;
}

TEST_F(KafkaTls, WrongPasswordIsRefusedWithoutEchoingIt) {
  const auto& ep = Endpoints::get();
  for (const char* mechanism : {"SCRAM-SHA-512", "PLAIN"}) {
    const std::string user =
        std::string(mechanism) == "PLAIN" ? ep.kafka_plain_user : ep.kafka_scram_user;
    auto r = probe(cluster_from_yaml(sasl(mechanism, user, kWrongPassword, ep.tls_ca)), 4s);
    ASSERT_FALSE(r.ok) << mechanism;
    EXPECT_NE(lower(r.message).find("authentication"), std::string::npos)
        << mechanism << ": " << r.message;
    EXPECT_NE(r.message.find("sasl.password"), std::string::npos) << mechanism << ": " << r.message;
    expect_no_secret(r.message);
  }
}

// --- NATS -----------------------------------------------------------------------------------

class NatsTls : public ::testing::Test {
 protected:
  void SetUp() override { MQDR_REQUIRE_BROKER(Endpoints::get().nats_tls); }
  static std::string nats(const std::string& token, const std::string& tls) {
    return "    kind: nats\n"
           "    servers: [" + Endpoints::get().nats_tls + "]\n"
           "    token: " + token + "\n" + tls;
  }
};

TEST_F(NatsTls, ClientCertificateTokenAndRightCaConnect) {
  const auto& ep = Endpoints::get();
  auto r = probe(cluster_from_yaml(nats(ep.nats_tls_token, tls_block(ep.tls_ca, true))));
  EXPECT_TRUE(r.ok) << r.message;
}

TEST_F(NatsTls, WrongCaIsRefusedAndSaysSo) {
  const auto& ep = Endpoints::get();
  auto r = probe(cluster_from_yaml(nats(ep.nats_tls_token, tls_block(ep.tls_wrong_ca, true))), 4s);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(lower(r.message).find("certificate verify failed"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("tls.ca_file"), std::string::npos) << r.message;
  expect_no_secret(r.message);
}

TEST_F(NatsTls, HostNameNotInTheCertificateIsRefused) {
  const auto& ep = Endpoints::get();
  // nats-server has one client listener; the name checked is set with tls.server_name instead.
  auto r = probe(cluster_from_yaml(nats(
                     ep.nats_tls_token,
                     tls_block(ep.tls_ca, true, "      server_name: elsewhere.example\n"))),
                 4s);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(lower(r.message).find("hostname mismatch"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("does not name 'elsewhere.example'"), std::string::npos) << r.message;
  expect_no_secret(r.message);
  auto off = probe(cluster_from_yaml(nats(
      ep.nats_tls_token, tls_block(ep.tls_ca, true,
                                   "      server_name: elsewhere.example\n"
                                   "      verify_hostname: false\n"))));
  EXPECT_TRUE(off.ok) << off.message;
}

TEST_F(NatsTls, MissingClientCertificateIsRefused) {
  const auto& ep = Endpoints::get();
  auto r = probe(cluster_from_yaml(nats(ep.nats_tls_token, tls_block(ep.tls_ca, false))), 4s);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(r.message.find("client certificate"), std::string::npos) << r.message;
  expect_no_secret(r.message);
}

TEST_F(NatsTls, WrongTokenIsRefusedWithoutEchoingIt) {
  const auto& ep = Endpoints::get();
  auto r = probe(cluster_from_yaml(nats(kWrongPassword, tls_block(ep.tls_ca, true))), 4s);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(lower(r.message).find("authorization"), std::string::npos) << r.message;
  expect_no_secret(r.message);
}

// NKey authentication (`nkey_seed_file`): a nats-server of the test's own, with TLS from the
// harness's certificates and one NKey user. The seed/public pair is the NATS documentation's
// example (`nk -gen user -pubout`); the server checks the public key mqdr derives and the nonce
// signature cnats makes with the seed.
class NatsNkey : public ::testing::Test {
 protected:
  static constexpr const char* kSeed = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY";
  static constexpr const char* kPublic = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";

  void SetUp() override {
    ASSERT_TRUE(ops_test::which("nats-server")) << "nats-server is not installed";
    const auto& ep = Endpoints::get();
    ASSERT_TRUE(std::filesystem::exists(ep.tls_ca)) << "no harness certificates: run "
                                                       "`tests/harness/harness.sh up tls`";
    port_ = ops_test::free_port();
    ops_test::spit(dir_ / "nats.conf",
                   "listen: \"127.0.0.1:" + std::to_string(port_) + "\"\n"
                   "tls { cert_file: \"" + ep.tls_dir + "/server.pem\", key_file: \"" + ep.tls_dir +
                   "/server.key\", ca_file: \"" + ep.tls_ca + "\" }\n"
                   "authorization { users: [ { nkey: " + kPublic + " } ] }\n"
                   "jetstream { store_dir: \"" + (dir_ / "js").string() + "\" }\n");
    server_ = ops_test::spawn({"nats-server", "-c", (dir_ / "nats.conf").string()},
                              dir_ / "nats.log");
    ASSERT_TRUE(ops_test::eventually(
        [&] { return test::reachable("127.0.0.1:" + std::to_string(port_)); }, 30s))
        << ops_test::slurp(dir_ / "nats.log");
  }
  void TearDown() override { ops_test::stop(server_); }

  std::string cluster_yaml(const std::string& seed_file) const {
    return "    kind: nats\n"
           "    servers: [tls://127.0.0.1:" + std::to_string(port_) + "]\n"
           "    nkey_seed_file: " + seed_file + "\n" + tls_block(Endpoints::get().tls_ca, false);
  }
  std::string seed_file(const std::string& name, const std::string& content) const {
    ops_test::spit(dir_ / name, content);
    std::filesystem::permissions(dir_ / name, std::filesystem::perms::owner_read |
                                                  std::filesystem::perms::owner_write);
    return (dir_ / name).string();
  }

  ops_test::TempDir dir_{"nkey"};
  ops_test::Proc server_;
  int port_ = 0;
};

TEST_F(NatsNkey, SeedFileConnects) {
  // Comments and blank lines around the seed, as `nk` and .nk files have them.
  auto r = probe(cluster_from_yaml(cluster_yaml(
      seed_file("user.nk", "# NKey seed of the mqdr user\n\n" + std::string(kSeed) + "\n"))));
  EXPECT_TRUE(r.ok) << r.message << "\n" << ops_test::slurp(dir_ / "nats.log");
}

TEST_F(NatsNkey, MalformedSeedIsRefusedWithoutShowingIt) {
  std::string broken = kSeed;
  broken[30] = broken[30] == 'A' ? 'B' : 'A';
  auto r = probe(cluster_from_yaml(cluster_yaml(seed_file("broken.nk", broken + "\n"))), 4s);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(r.message.find("nkey_seed_file"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("checksum"), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find(broken), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find(kSeed), std::string::npos) << r.message;
}

// --- RabbitMQ -------------------------------------------------------------------------------

class RabbitTls : public ::testing::Test {
 protected:
  void SetUp() override { MQDR_REQUIRE_BROKER(Endpoints::get().rabbit_a_tls); }
  // amqps://USER@host:port/ with the password in its own key.
  static std::string rabbit(const std::string& uri, const std::string& password,
                            const std::string& tls) {
    const auto& ep = Endpoints::get();
    const std::string at = "amqps://" + ep.rabbit_tls_user + "@" + uri.substr(8) + "/";
    return "    kind: rabbitmq\n"
           "    uri: " + at + "\n"
           "    password: " + password + "\n" + tls;
  }
};

TEST_F(RabbitTls, ClientCertificateAndRightCaConnect) {
  const auto& ep = Endpoints::get();
  auto r = probe(cluster_from_yaml(
      rabbit(ep.rabbit_a_tls, ep.rabbit_tls_password, tls_block(ep.tls_ca, true))));
  EXPECT_TRUE(r.ok) << r.message;
}

TEST_F(RabbitTls, WrongCaIsRefusedAndSaysSo) {
  const auto& ep = Endpoints::get();
  auto r = probe(cluster_from_yaml(
                     rabbit(ep.rabbit_a_tls, ep.rabbit_tls_password,
                            tls_block(ep.tls_wrong_ca, true))),
                 4s);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(lower(r.message).find("certificate verif"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("tls.ca_file"), std::string::npos) << r.message;
  expect_no_secret(r.message);
}

TEST_F(RabbitTls, HostNameNotInTheCertificateIsRefused) {
  const auto& ep = Endpoints::get();
  auto r = probe(cluster_from_yaml(rabbit(ep.rabbit_a_tls_other_host, ep.rabbit_tls_password,
                                          tls_block(ep.tls_ca, true))),
                 4s);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(lower(r.message).find("certificate verify failed"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("does not name '127.0.0.2'"), std::string::npos) << r.message;
  expect_no_secret(r.message);
  auto off = probe(cluster_from_yaml(
      rabbit(ep.rabbit_a_tls_other_host, ep.rabbit_tls_password,
             tls_block(ep.tls_ca, true, "      verify_hostname: false\n"))));
  EXPECT_TRUE(off.ok) << off.message;
}

TEST_F(RabbitTls, WrongPasswordIsRefusedWithoutEchoingIt) {
  const auto& ep = Endpoints::get();
  auto r = probe(cluster_from_yaml(
                     rabbit(ep.rabbit_a_tls, kWrongPassword, tls_block(ep.tls_ca, true))),
                 4s);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(lower(r.message).find("login refused"), std::string::npos) << r.message;
  expect_no_secret(r.message);
}

}  // namespace
}  // namespace mqdr
