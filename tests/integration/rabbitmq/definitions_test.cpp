// Definitions sync in the `orders` vhost: a queue with arguments, a quorum queue, a policy and an
// exchange-to-exchange binding appear on the target; a binding added on the source follows, and
// one removed on the source goes away on the target.

#include <gtest/gtest.h>

#include "rabbit_fixture.hpp"
#include "rabbitmq/capture.hpp"

namespace mqdr::test::rabbit {
namespace {

bool has_binding(rabbitmq::Management& m, const std::string& src, const char* kind,
                 const std::string& dst, const std::string& key) {
  nlohmann::json list;
  if (!m.get(fmt::format("/api/bindings/{}/e/{}/{}/{}", m.vhost(), rabbitmq::Management::enc(src),
                         kind, rabbitmq::Management::enc(dst)),
             list)
           .is_ok()) {
    return false;
  }
  for (const auto& b : list) {
    if (b.value("routing_key", "") == key) return true;
  }
  return false;
}

TEST(RabbitDefinitions, QueuesPoliciesAndExchangeBindingsFollowTheSource) {
  const std::string sfx = suffix();
  const std::string mirror = "it-defs-" + sfx;
  const std::string ex = "it.defs." + sfx;
  const std::string ex2 = "it.defs.fan." + sfx;
  const std::string qa = "it.defs.qa." + sfx;
  const std::string qq = "it.defs.qq." + sfx;
  const std::string policy = "it-defs-" + sfx;
  const auto A = node_a("orders");
  const auto B = node_b("orders");
  Client a(A);
  rabbitmq::Management ma(A, Duration(10000));
  rabbitmq::Management mb(B, Duration(10000));

  a.exchange(ex, "topic");
  a.exchange(ex2, "fanout");
  a.bind_exchange(ex2, ex, "a.#");
  amqp_table_entry_t args[2];
  args[0].key = amqp_cstring_bytes("x-max-length");
  args[0].value.kind = AMQP_FIELD_KIND_I32;
  args[0].value.value.i32 = 100;
  args[1].key = amqp_cstring_bytes("x-message-ttl");
  args[1].value.kind = AMQP_FIELD_KIND_I32;
  args[1].value.value.i32 = 60000;
  a.queue(qa, amqp_table_t{2, args});
  amqp_table_entry_t quorum;
  quorum.key = amqp_cstring_bytes("x-queue-type");
  quorum.value.kind = AMQP_FIELD_KIND_UTF8;
  quorum.value.value.bytes = amqp_cstring_bytes("quorum");
  a.queue(qq, amqp_table_t{1, &quorum});
  a.bind(qa, ex2, "");
  ASSERT_TRUE(ma.put(fmt::format("/api/policies/{}/{}", ma.vhost(), policy),
                     {{"pattern", "^it\\.defs\\.qa\\." + sfx + "$"},
                      {"definition", {{"max-length-bytes", 1048576}}},
                      {"priority", 7},
                      {"apply-to", "queues"}})
                  .is_ok());

  auto ctx = mirror_context(mirror, A, B);
  ctx.mirror.rabbitmq.exchanges = {ex};
  ctx.mirror.rabbitmq.refresh_interval = Duration(1000);
  RunningWorker worker(ctx);

  ASSERT_TRUE(eventually(
      [&] {
        nlohmann::json q, qqj, p, e;
        if (!mb.get(fmt::format("/api/queues/{}/{}", mb.vhost(), qa), q).is_ok()) return false;
        if (!mb.get(fmt::format("/api/queues/{}/{}", mb.vhost(), qq), qqj).is_ok()) return false;
        if (!mb.get(fmt::format("/api/policies/{}/{}", mb.vhost(), policy), p).is_ok()) return false;
        if (!mb.get(fmt::format("/api/exchanges/{}/{}", mb.vhost(), ex2), e).is_ok()) return false;
        return q["arguments"] == nlohmann::json{{"x-max-length", 100}, {"x-message-ttl", 60000}} &&
               qqj.value("type", "") == "quorum" && p.value("priority", 0) == 7 &&
               p["definition"] == nlohmann::json{{"max-length-bytes", 1048576}} &&
               e.value("type", "") == "fanout" && has_binding(mb, ex, "e", ex2, "a.#") &&
               has_binding(mb, ex2, "q", qa, "");
      },
      60s))
      << worker.stats().last_error;

  // A binding added on the source follows; one removed there goes away on the target.
  a.bind(qq, ex, "b.*");
  ASSERT_TRUE(eventually([&] { return has_binding(mb, ex, "q", qq, "b.*"); }, 60s));
  amqp_queue_unbind(a.conn().state(), 1, bytes_of(qq), bytes_of(ex), amqp_cstring_bytes("b.*"),
                    amqp_empty_table);
  a.check("queue.unbind");
  ASSERT_TRUE(eventually([&] { return !has_binding(mb, ex, "q", qq, "b.*"); }, 60s));
  // mqdr's own capture queue is never copied.
  nlohmann::json none;
  EXPECT_FALSE(mb.get(fmt::format("/api/queues/{}/{}", mb.vhost(),
                                  rabbitmq::Management::enc(rabbitmq::capture_queue_name(mirror, ex))),
                      none)
                   .is_ok());
  EXPECT_TRUE(worker.stop().is_ok());

  Client b(B);
  for (auto* c : {&a, &b}) {
    c->delete_queue(qa);
    c->delete_queue(qq);
    c->delete_exchange(ex2);
    c->delete_exchange(ex);
  }
  a.delete_queue(rabbitmq::capture_queue_name(mirror, ex));
  (void)ma.del(fmt::format("/api/policies/{}/{}", ma.vhost(), policy));
  (void)mb.del(fmt::format("/api/policies/{}/{}", mb.vhost(), policy));
}

}  // namespace
}  // namespace mqdr::test::rabbit
