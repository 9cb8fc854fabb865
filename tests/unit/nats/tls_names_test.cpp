// The NATS adapter's TLS and NKey helpers (src/nats/client.cpp), without a server: which name a
// server certificate must carry, and the public key derived from a user NKey seed.
#include <gtest/gtest.h>

#include "nats/client.hpp"

namespace mqdr::nats {
namespace {

ClusterConfig cluster(std::vector<std::string> servers) {
  ClusterConfig c;
  c.name = "n";
  c.kind = ClusterKind::nats;
  c.nats.servers = std::move(servers);
  c.tls.enabled = true;
  return c;
}

TEST(NatsTlsName, HostOfServerUrls) {
  EXPECT_EQ(url_host("tls://n1.east:4222"), "n1.east");
  EXPECT_EQ(url_host("nats://127.0.0.1:4222"), "127.0.0.1");
  EXPECT_EQ(url_host("tls://user@n1.east:4222/"), "n1.east");
  EXPECT_EQ(url_host("nats://[::1]:4222"), "::1");
  EXPECT_EQ(url_host("n1.east"), "n1.east");
}

TEST(NatsTlsName, ServerNameElseFirstHostElseNothingWhenNotChecked) {
  auto c = cluster({"tls://n1.east:4222", "tls://n1.east:4223"});
  EXPECT_EQ(tls_name_to_check(c), "n1.east");
  c.tls.server_name = "nats.east";
  EXPECT_EQ(tls_name_to_check(c), "nats.east");
  c.tls.verify_hostname = false;
  EXPECT_EQ(tls_name_to_check(c), "");
  c.tls.verify_hostname = true;
  c.tls.verify = false;
  EXPECT_EQ(tls_name_to_check(c), "");
}

// The pair of the NATS documentation's `nk -gen user -pubout` example.
TEST(NatsNkeySeed, PublicKeyOfAUserSeed) {
  std::string why;
  EXPECT_EQ(nkey_public_from_seed("SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY", why),
            "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4")
      << why;
}

TEST(NatsNkeySeed, MalformedSeedsAreRefusedWithoutShowingThem) {
  const std::string seed = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY";
  std::string why;
  std::string flipped = seed;
  flipped[10] = flipped[10] == 'A' ? 'B' : 'A';
  EXPECT_EQ(nkey_public_from_seed(flipped, why), "");
  EXPECT_NE(why.find("checksum"), std::string::npos) << why;
  EXPECT_EQ(why.find(flipped), std::string::npos) << why;
  EXPECT_EQ(nkey_public_from_seed(seed.substr(0, 40), why), "");
  EXPECT_NE(why.find("58 base32"), std::string::npos) << why;
  EXPECT_EQ(nkey_public_from_seed("su-not-base32!", why), "");
  EXPECT_NE(why.find("not an NKey seed"), std::string::npos) << why;
  // A public key is not a seed.
  EXPECT_EQ(nkey_public_from_seed("UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4", why), "");
}

}  // namespace
}  // namespace mqdr::nats
