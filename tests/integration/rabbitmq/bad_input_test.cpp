// Bad input: a missing exchange, wrong credentials, a vhost that does not exist. The worker says
// what is wrong in its status (no secret in it), keeps retrying with a growing backoff (a busy
// loop would make thousands of attempts in the same window), and stops promptly when asked.
// The probe reports the same problems.

#include <gtest/gtest.h>

#include "rabbit_fixture.hpp"
#include "rabbitmq/ops.hpp"

namespace mqdr::test::rabbit {
namespace {

void expect_clear_failure(MirrorContext ctx, const std::string& needle) {
  RunningWorker worker(ctx);
  ASSERT_TRUE(eventually(
      [&] {
        auto s = worker.stats();
        return s.state == "backoff" && s.last_error.find(needle) != std::string::npos;
      },
      60s))
      << "state " << worker.stats().state << ", last error: " << worker.stats().last_error;
  // Stay a few backoff rounds: 1 s, 2 s, 4 s ... so only a handful of attempts.
  std::this_thread::sleep_for(6s);
  const auto s = worker.stats();
  EXPECT_LE(s.errors_total, 6u) << "retrying too fast";
  EXPECT_EQ(s.last_error.find("mqdr-secret"), std::string::npos) << "secret in the status";
  EXPECT_TRUE(worker.stop().is_ok());
  EXPECT_EQ(worker.stats().state, "stopped");
}

TEST(RabbitBadInput, MissingExchange) {
  auto ctx = mirror_context("it-bad-ex-" + suffix(), node_a(), node_b());
  ctx.mirror.rabbitmq.exchanges = {"it.does-not-exist." + suffix()};
  expect_clear_failure(ctx, "does not exist");
}

TEST(RabbitBadInput, WrongCredentials) {
  auto a = node_a();
  a.rabbitmq.password = Secret("wrong-password");
  auto ctx = mirror_context("it-bad-pw-" + suffix(), a, node_b());
  ctx.mirror.rabbitmq.exchanges = {"amq.topic"};
  ctx.mirror.rabbitmq.sync_definitions = false;
  expect_clear_failure(ctx, "login refused for user 'mqdr'");

  auto probe = rabbitmq::make_probe(a);
  auto r = probe->check(Duration(5000));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("login refused"), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find("wrong-password"), std::string::npos);
}

TEST(RabbitBadInput, MissingVhost) {
  const std::string vhost = "it-no-such-vhost-" + suffix();
  auto ctx = mirror_context("it-bad-vh-" + suffix(), node_a(vhost, false), node_b());
  ctx.mirror.rabbitmq.exchanges = {"amq.topic"};
  ctx.mirror.rabbitmq.sync_definitions = false;
  expect_clear_failure(ctx, "vhost '" + vhost + "' does not exist");

  auto probe = rabbitmq::make_probe(node_a(vhost, false));
  EXPECT_FALSE(probe->check(Duration(5000)).ok);
}

TEST(RabbitProbe, HealthyClusterAnswers) {
  for (const auto& c : {node_a(), node_b()}) {
    auto probe = rabbitmq::make_probe(c);
    auto r = probe->check(Duration(10000));
    EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
    EXPECT_TRUE(probe->check(Duration(10000)).ok) << "second check on the kept connection";
  }
}

}  // namespace
}  // namespace mqdr::test::rabbit
