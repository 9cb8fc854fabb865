// RabbitMQ backups against the harness: definitions and queue messages of rabbit-a backed up
// without changing the live queue (depth and order), restored renamed into rabbit-b (messages
// with their properties in order, the binding working); kill -9 during a restore, then a rerun:
// every message exactly once.
#include <gtest/gtest.h>

#include <cstring>

#include "backup/manifest.hpp"
#include "tests/integration/backup/backup_fixture.hpp"
#include "tests/integration/rabbitmq/rabbit_fixture.hpp"

namespace mqdr::backup::test {
namespace {

using mqdr::test::rabbit::Client;

class RabbitBackup : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& ep = mqdr::test::Endpoints::get();
    MQDR_REQUIRE_BROKER(ep.rabbit_a);
    MQDR_REQUIRE_BROKER(ep.rabbit_b);
    ep_ = &ep;
  }
  void config(Scratch& s, const std::string& plan, const std::string& queue, const std::string& exchange) {
    s.write_config("  ra: { kind: rabbitmq, uri: '" + ep_->rabbit_a + "', management_uri: '" + ep_->rabbit_a_mgmt +
                       "' }\n"
                       "  rb: { kind: rabbitmq, uri: '" + ep_->rabbit_b + "', management_uri: '" + ep_->rabbit_b_mgmt +
                       "' }\n",
                   "  - name: " + plan + "\n    cluster: ra\n    queues: ['" + queue + "']\n" +
                       (exchange.empty() ? "" : "    exchanges: ['" + exchange + "']\n") +
                       "    dir: " + s.backups().string() + "\n");
  }
  // Publishes messages `from`..`from+n-1` with a message id, content type, timestamp, priority
  // and a typed headers table.
  static void publish(Client& c, const std::string& exchange, const std::string& key, int from, int n) {
    for (int i = from; i < from + n; ++i) {
      amqp_basic_properties_t p;
      std::memset(&p, 0, sizeof(p));
      const std::string id = fmt::format("m{}", i);
      amqp_table_entry_t entries[2];
      entries[0].key = amqp_cstring_bytes("x-index");
      entries[0].value.kind = AMQP_FIELD_KIND_I64;
      entries[0].value.value.i64 = i;
      entries[1].key = amqp_cstring_bytes("tag");
      entries[1].value.kind = AMQP_FIELD_KIND_UTF8;
      entries[1].value.value.bytes = amqp_cstring_bytes(i % 2 == 0 ? "even" : "odd");
      p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                 AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_PRIORITY_FLAG;
      p.delivery_mode = 2;
      p.content_type = amqp_cstring_bytes("application/json");
      p.message_id = amqp_cstring_bytes(id.c_str());
      p.timestamp = 1700000000u + static_cast<std::uint64_t>(i);
      p.priority = static_cast<std::uint8_t>(i % 5);
      p.headers = amqp_table_t{2, entries};
      c.publish(exchange, key, p, fmt::format("{{\"i\":{}}}", i));
    }
  }
  const mqdr::test::Endpoints* ep_ = nullptr;
};

TEST_F(RabbitBackup, LiveQueueUnchangedAndRestoreRenamedIsIdentical) {
  Scratch s("rbk");
  const std::string sfx = mqdr::test::rabbit::suffix();
  const std::string q = "bk.q." + sfx, e = "bk.ex." + sfx;
  const std::string q2 = q + ".r", e2 = e + ".r";
  Client a(mqdr::test::rabbit::node_a());
  Client b(mqdr::test::rabbit::node_b());
  a.exchange(e, "direct");
  a.queue(q);
  a.bind(q, e, "k");
  publish(a, e, "k", 0, 500);
  ASSERT_TRUE(wait_for([&] { return a.depth(q) == 500; }, 30s));
  config(s, "rplan", q, e);

  RunResult full = s.mqdr({"backup", "-c", s.config().string(), "--plan", "rplan"});
  ASSERT_EQ(full.rc, 0) << full.out;
  EXPECT_TRUE(wait_for([&] { return a.depth(q) == 500; }, 30s)) << "a backup leaves the queue's depth as it was";
  publish(a, e, "k", 500, 100);
  ASSERT_TRUE(wait_for([&] { return a.depth(q) == 600; }, 30s));
  RunResult inc = s.mqdr({"backup", "-c", s.config().string(), "--plan", "rplan"});
  ASSERT_EQ(inc.rc, 0) << inc.out;
  const auto names = s.backup_names("rplan");
  ASSERT_EQ(names.size(), 2u);
  const Manifest m1 = read_manifest(s.backups() / "rplan" / names[1]);
  EXPECT_EQ(m1.parent, names[0]);
  EXPECT_EQ(m1.records, 600u) << "a queue's backup holds its whole current content";
  EXPECT_EQ(m1.topology["bindings"].size(), 1u);

  RunResult r = s.mqdr({"restore", "-c", s.config().string(), "--from", (s.backups() / "rplan" / names[1]).string(),
                        "--to", "rb", "--rename", q + "=" + q2, "--rename", e + "=" + e2});
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_TRUE(wait_for([&] { return b.depth(q2) == 600; }, 30s)) << b.depth(q2);

  // The live queue: same depth, same order as published.
  ASSERT_TRUE(wait_for([&] { return a.depth(q) == 600; }, 30s));
  const auto live = a.take(q, 600);
  const auto restored = b.take(q2, 600);
  ASSERT_EQ(live.size(), 600u);
  ASSERT_EQ(restored.size(), 600u);
  for (std::size_t i = 0; i < live.size(); ++i) {
    ASSERT_EQ(live[i].body, fmt::format("{{\"i\":{}}}", i)) << "order on the live queue";
    ASSERT_EQ(restored[i].body, live[i].body) << i;
    ASSERT_EQ(mqdr::test::rabbit::plain_attributes(restored[i].record),
              mqdr::test::rabbit::plain_attributes(live[i].record)) << i;
    ASSERT_EQ(mqdr::test::rabbit::typed_app_headers(restored[i].record),
              mqdr::test::rabbit::typed_app_headers(live[i].record)) << i;
  }
  // The binding came along (renamed).
  publish(b, e2, "k", 1000, 1);
  EXPECT_TRUE(wait_for([&] { return b.depth(q2) == 1; }, 30s));
  a.delete_queue(q);
  a.delete_exchange(e);
  b.delete_queue(q2);
  b.delete_exchange(e2);
}

TEST_F(RabbitBackup, Kill9DuringRestoreThenRerunHasEveryMessageOnce) {
  Scratch s("rbk");
  const std::string sfx = mqdr::test::rabbit::suffix();
  const std::string q = "bk.kill." + sfx, q2 = q + ".r";
  Client a(mqdr::test::rabbit::node_a());
  Client b(mqdr::test::rabbit::node_b());
  a.queue(q);
  constexpr int kMessages = 30000;
  publish(a, "", q, 0, kMessages);
  ASSERT_TRUE(wait_for([&] { return a.depth(q) == kMessages; }, 60s));
  config(s, "rk", q, "");
  ASSERT_EQ(s.mqdr({"backup", "-c", s.config().string(), "--plan", "rk"}).rc, 0);
  const fs::path bk = s.backups() / "rk" / s.backup_names("rk").at(0);
  {
    Child c({"restore", "-c", s.config().string(), "--from", bk.string(), "--to", "rb", "--rename", q + "=" + q2},
            s.dir() / "killed.log");
    ASSERT_TRUE(wait_for([&] { return !c.running() || b.depth(q2) > 0; }, 120s)) << c.output();
    ASSERT_TRUE(c.running()) << "the restore ended before it could be killed: " << c.output();
    c.kill9();
  }
  RunResult again = s.mqdr({"restore", "-c", s.config().string(), "--from", bk.string(), "--to", "rb",
                            "--rename", q + "=" + q2});
  ASSERT_EQ(again.rc, 0) << again.out;
  // Every publish of the rerun was confirmed: the depth is final.
  EXPECT_EQ(b.depth(q2), kMessages) << "duplicates or losses";
  const auto restored = b.take(q2, kMessages, 60s);
  ASSERT_EQ(restored.size(), static_cast<std::size_t>(kMessages));
  EXPECT_EQ(b.depth(q2), 0);
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(restored[static_cast<std::size_t>(i)].body, fmt::format("{{\"i\":{}}}", i)) << i;
  }
  a.delete_queue(q);
  b.delete_queue(q2);
}

TEST_F(RabbitBackup, Kill9DuringBackupGivesEveryMessageBackAndLeavesNoBackup) {
  Scratch s("rbk");
  const std::string sfx = mqdr::test::rabbit::suffix();
  const std::string q = "bk.kb." + sfx;
  Client a(mqdr::test::rabbit::node_a());
  a.queue(q);
  constexpr int kMessages = 60000;
  publish(a, "", q, 0, kMessages);
  ASSERT_TRUE(wait_for([&] { return a.depth(q) == kMessages; }, 60s));
  config(s, "rkb", q, "");
  {
    Child c({"backup", "-c", s.config().string(), "--plan", "rkb"}, s.dir() / "killed.log");
    ASSERT_TRUE(wait_for([&] {
      if (!c.running()) return true;
      std::error_code ec;
      for (const auto& de : fs::recursive_directory_iterator(s.backups() / "rkb", ec)) {
        if (de.path().string().find(".seg") != std::string::npos) return true;
      }
      return false;
    }, 120s)) << c.output();
    ASSERT_TRUE(c.running()) << "the backup ended before it could be killed: " << c.output();
    c.kill9();
  }
  EXPECT_TRUE(s.backup_names("rkb").empty());
  // The broker gives the unacked messages back when the dead connection closes.
  EXPECT_TRUE(wait_for([&] { return a.depth(q) == kMessages; }, 60s)) << a.depth(q);
  RunResult again = s.mqdr({"backup", "-c", s.config().string(), "--plan", "rkb"});
  ASSERT_EQ(again.rc, 0) << again.out;
  EXPECT_EQ(read_manifest(s.backups() / "rkb" / s.backup_names("rkb").at(0)).records,
            static_cast<std::uint64_t>(kMessages));
  ASSERT_TRUE(wait_for([&] { return a.depth(q) == kMessages; }, 60s));
  const auto live = a.take(q, kMessages, 120s);
  ASSERT_EQ(live.size(), static_cast<std::size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(live[static_cast<std::size_t>(i)].body, fmt::format("{{\"i\":{}}}", i)) << "order kept, " << i;
  }
  a.delete_queue(q);
}

}  // namespace
}  // namespace mqdr::backup::test
