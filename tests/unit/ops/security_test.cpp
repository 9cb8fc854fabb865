// Security of the deployment surface: the admin listener over TLS (certificates made by openssl at
// test time) and the warning about secret files every user may read, both through the real
// `mqdr` binary.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include "tests/unit/ops/ops_util.hpp"

namespace mqdr::ops_test {
namespace {

// A self-signed certificate for 127.0.0.1 (key mode 0600); returns "" or the openssl output.
std::string make_cert(const fs::path& dir, const std::string& name) {
  auto r = run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", (dir / (name + ".key")).string(), "-out",
                (dir / (name + ".pem")).string()});
  if (r.code != 0) return r.output.empty() ? "openssl failed" : r.output;
  fs::permissions(dir / (name + ".key"), fs::perms::owner_read | fs::perms::owner_write);
  return "";
}

std::string base_config(const fs::path& dir, int port, const std::string& admin_extra) {
  return "version: 1\n"
         "daemon:\n"
         "  state_dir: " + (dir / "state").string() + "\n"
         "  admin:\n"
         "    listen: 127.0.0.1:" + std::to_string(port) + "\n" + admin_extra +
         "clusters:\n"
         "  a: { kind: kafka, bootstrap_servers: 127.0.0.1:1 }\n"
         "  b: { kind: kafka, bootstrap_servers: 127.0.0.1:2 }\n"
         "mirrors:\n"
         "  - { name: m1, source: a, target: b, topics: [t] }\n";
}

TEST(AdminTls, ServesHttpsThatOnlyTheRightCaAccepts) {
  ASSERT_TRUE(which("openssl")) << "openssl is not installed: run scripts/setup.sh";
  TempDir dir("tls");
  ASSERT_EQ(make_cert(dir.path(), "server"), "");
  ASSERT_EQ(make_cert(dir.path(), "other"), "");
  const int port = free_port();
  spit(dir / "admin.token", "tls-test-token\n");
  fs::permissions(dir / "admin.token", fs::perms::owner_read | fs::perms::owner_write);
  spit(dir / "mqdr.yaml",
       base_config(dir.path(), port,
                   "    token_file: admin.token\n"
                   "    tls: { cert_file: server.pem, key_file: server.key }\n"));
  auto v = run({MQDR_BINARY, "validate", "-c", (dir / "mqdr.yaml").string()});
  ASSERT_EQ(v.code, 0) << v.output;
  EXPECT_EQ(v.output.find("warning"), std::string::npos) << v.output;

  Proc daemon = spawn({MQDR_BINARY, "run", "-c", (dir / "mqdr.yaml").string()}, dir / "run.log");
  httplib::SSLClient good("127.0.0.1", port);
  good.set_ca_cert_path((dir / "server.pem").c_str());
  good.enable_server_certificate_verification(true);
  good.set_connection_timeout(2, 0);
  ASSERT_TRUE(eventually([&] {
    auto r = good.Get("/readyz");
    return r && r->status == 200;
  })) << slurp(dir / "run.log");
  auto health = good.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto metrics = good.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("mqdr_build_info"), std::string::npos);

  // A client trusting another CA refuses the server's certificate.
  httplib::SSLClient wrong("127.0.0.1", port);
  wrong.set_ca_cert_path((dir / "other.pem").c_str());
  wrong.enable_server_certificate_verification(true);
  auto refused = wrong.Get("/healthz");
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.error(), httplib::Error::SSLServerVerification);

  // Plain HTTP gets no answer from the TLS listener.
  httplib::Client plain("127.0.0.1", port);
  plain.set_read_timeout(3, 0);
  auto cleartext = plain.Get("/healthz");
  EXPECT_TRUE(!cleartext || cleartext->status != 200);

  EXPECT_EQ(stop(daemon), 0) << slurp(dir / "run.log");
  EXPECT_EQ(slurp(dir / "run.log").find("tls-test-token"), std::string::npos);
}

// daemon.admin.tls.ca_file is what mqdr's own commands trust when they call the listener (the
// daemon asks for no client certificate); server_name is the name they expect in it.
TEST(AdminTls, StatusCommandTrustsOnlyTheConfiguredCaFile) {
  ASSERT_TRUE(which("openssl")) << "openssl is not installed: run scripts/setup.sh";
  TempDir dir("tls-cli");
  ASSERT_EQ(make_cert(dir.path(), "server"), "");
  ASSERT_EQ(make_cert(dir.path(), "other"), "");
  const int port = free_port();
  auto config = [&](const std::string& name, const std::string& tls_extra) {
    spit(dir / name, base_config(dir.path(), port,
                                 "    tls: { cert_file: server.pem, key_file: server.key" +
                                     tls_extra + " }\n"));
    return (dir / name).string();
  };
  const std::string good = config("mqdr.yaml", ", ca_file: server.pem");
  const std::string wrong_ca = config("wrong-ca.yaml", ", ca_file: other.pem");
  const std::string wrong_name =
      config("wrong-name.yaml", ", ca_file: server.pem, server_name: localhost");

  Proc daemon = spawn({MQDR_BINARY, "run", "-c", good}, dir / "run.log");
  ASSERT_TRUE(eventually([&] { return run({MQDR_BINARY, "status", "-c", good, "--json"}).code == 0; }))
      << run({MQDR_BINARY, "status", "-c", good, "--json"}).output << slurp(dir / "run.log");
  auto ok = run({MQDR_BINARY, "status", "-c", good, "--json"});
  EXPECT_NE(ok.output.find("\"mirrors\""), std::string::npos) << ok.output;

  auto refused = run({MQDR_BINARY, "status", "-c", wrong_ca});
  EXPECT_NE(refused.code, 0) << refused.output;
  EXPECT_NE(refused.output.find("daemon.admin.tls.ca_file"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("not accepted"), std::string::npos) << refused.output;

  // The certificate names 127.0.0.1 only: expecting "localhost" in it is refused.
  auto misnamed = run({MQDR_BINARY, "status", "-c", wrong_name});
  EXPECT_NE(misnamed.code, 0) << misnamed.output;
  EXPECT_NE(misnamed.output.find("names localhost"), std::string::npos) << misnamed.output;
  EXPECT_EQ(stop(daemon), 0) << slurp(dir / "run.log");
}

// `enabled: false` keeps the section but switches TLS off, for the daemon and the CLI alike,
// and validation says so.
TEST(AdminTls, DisabledSectionServesPlainHttp) {
  ASSERT_TRUE(which("openssl")) << "openssl is not installed: run scripts/setup.sh";
  TempDir dir("tls-off");
  ASSERT_EQ(make_cert(dir.path(), "server"), "");
  const int port = free_port();
  spit(dir / "mqdr.yaml",
       base_config(dir.path(), port,
                   "    tls: { enabled: false, cert_file: server.pem, key_file: server.key }\n"));
  const std::string config = (dir / "mqdr.yaml").string();
  auto v = run({MQDR_BINARY, "validate", "-c", config});
  EXPECT_EQ(v.code, 0) << v.output;
  EXPECT_NE(v.output.find("warning"), std::string::npos) << v.output;
  EXPECT_NE(v.output.find("serves plain HTTP"), std::string::npos) << v.output;

  Proc daemon = spawn({MQDR_BINARY, "run", "-c", config}, dir / "run.log");
  httplib::Client plain("127.0.0.1", port);
  plain.set_connection_timeout(2, 0);
  ASSERT_TRUE(eventually([&] {
    auto r = plain.Get("/healthz");
    return r && r->status == 200;
  })) << slurp(dir / "run.log");
  // Nothing answers TLS there.
  httplib::SSLClient tls("127.0.0.1", port);
  tls.enable_server_certificate_verification(false);
  tls.set_connection_timeout(2, 0);
  tls.set_read_timeout(3, 0);
  EXPECT_FALSE(tls.Get("/healthz"));
  auto status = run({MQDR_BINARY, "status", "-c", config, "--json"});
  EXPECT_EQ(status.code, 0) << status.output;
  EXPECT_EQ(stop(daemon), 0) << slurp(dir / "run.log");
}

TEST(AdminTls, UnloadableCertificateStopsTheStart) {
  ASSERT_TRUE(which("openssl")) << "openssl is not installed: run scripts/setup.sh";
  TempDir dir("tls-bad");
  ASSERT_EQ(make_cert(dir.path(), "server"), "");
  ASSERT_EQ(make_cert(dir.path(), "other"), "");
  const int port = free_port();
  // A key that does not belong to the certificate.
  spit(dir / "mqdr.yaml", base_config(dir.path(), port,
                                      "    tls: { cert_file: server.pem, key_file: other.key }\n"));
  auto r = run({MQDR_BINARY, "run", "-c", (dir / "mqdr.yaml").string()}, {}, false, 60s);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("server.pem"), std::string::npos) << r.output;
}

// A secret file every user may read is warned about (and names the file and the fix), never
// fails validation, never shows the secret; once private, the warning is gone.
TEST(SecretFiles, WorldReadableSecretFilesAreWarnedAbout) {
  TempDir dir("perm");
  const int port = free_port();
  const std::string token = "perm-test-token-4242";
  const std::string password = "perm-test-password-4242";
  spit(dir / "admin.token", token + "\n");
  spit(dir / "rabbit.pass", password + "\n");
  fs::permissions(dir / "admin.token",
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                      fs::perms::others_read);
  fs::permissions(dir / "rabbit.pass",
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                      fs::perms::others_read);
  const std::string config =
      "version: 1\n"
      "daemon:\n"
      "  state_dir: " + (dir / "state").string() + "\n"
      "  admin: { listen: 127.0.0.1:" + std::to_string(port) + ", token_file: admin.token }\n"
      "clusters:\n"
      "  a: { kind: rabbitmq, uri: 'amqp://mqdr@127.0.0.1:1/', password_file: rabbit.pass }\n"
      "  b: { kind: rabbitmq, uri: 'amqp://mqdr@127.0.0.1:2/', password_file: rabbit.pass }\n"
      "mirrors:\n"
      "  - { name: m1, source: a, target: b, queues: [q] }\n";
  spit(dir / "mqdr.yaml", config);

  auto v = run({MQDR_BINARY, "validate", "-c", (dir / "mqdr.yaml").string()});
  EXPECT_EQ(v.code, 0) << v.output;
  for (const char* file : {"admin.token", "rabbit.pass"}) {
    bool warned = false;
    std::stringstream lines(v.output);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.find("warning") != std::string::npos && line.find(file) != std::string::npos &&
          line.find("o-rwx") != std::string::npos) {
        warned = true;
      }
    }
    EXPECT_TRUE(warned) << file << " not warned about:\n" << v.output;
  }
  EXPECT_EQ(v.output.find(token), std::string::npos) << v.output;
  EXPECT_EQ(v.output.find(password), std::string::npos) << v.output;

  // The daemon logs the same warning at start.
  Proc daemon = spawn({MQDR_BINARY, "run", "-c", (dir / "mqdr.yaml").string()}, dir / "run.log");
  EXPECT_TRUE(eventually([&] {
    const std::string log = slurp(dir / "run.log");
    return log.find("admin.token") != std::string::npos &&
           log.find("rabbit.pass") != std::string::npos &&
           log.find("o-rwx") != std::string::npos;
  })) << slurp(dir / "run.log");
  EXPECT_EQ(stop(daemon), 0) << slurp(dir / "run.log");
  EXPECT_EQ(slurp(dir / "run.log").find(token), std::string::npos);
  EXPECT_EQ(slurp(dir / "run.log").find(password), std::string::npos);

  // Group-readable (root:mqdr 0640, as docs/operations.md recommends) is fine.
  for (const char* file : {"admin.token", "rabbit.pass"}) {
    fs::permissions(dir / file,
                    fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  }
  auto quiet = run({MQDR_BINARY, "validate", "-c", (dir / "mqdr.yaml").string()});
  EXPECT_EQ(quiet.code, 0) << quiet.output;
  EXPECT_EQ(quiet.output.find("o-rwx"), std::string::npos) << quiet.output;
}

}  // namespace
}  // namespace mqdr::ops_test
