// Kafka mirror against the two harness clusters (A = source, B = target), driving the worker
// through the BrokerRegistry like the daemon does.

#include <algorithm>
#include <set>

#include "kafka/worker.hpp"
#include "kafka_fixture.hpp"

namespace mqdr::kafka::test {
namespace {

std::vector<Record> make_records(const std::vector<std::string>& topics, int partitions, int n) {
  std::vector<Record> out;
  out.reserve(static_cast<std::size_t>(n));
  // Recent CreateTimes: older than retention.ms (7 days) would be deleted by both brokers.
  const std::int64_t base_ts =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch()).count() - 3600000;
  for (int i = 0; i < n; ++i) {
    Record r;
    r.item = topics[static_cast<std::size_t>(i) % topics.size()];
    r.partition = (i / static_cast<int>(topics.size())) % partitions;
    if (i % 10 != 0) r.key = "key-" + std::to_string(i % 997);
    if (i % 13 != 0) r.value = "value-" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 50), 'x');
    if (i % 23 == 0) r.value = std::string();  // empty, not null
    if (i % 4 != 0) {
      r.headers.push_back({"trace", "t-" + std::to_string(i)});
      r.headers.push_back({"nullable", std::nullopt});
      r.headers.push_back({"trace", "dup"});
    }
    r.timestamp_ms = base_ts + i;
    out.push_back(std::move(r));
  }
  return out;
}

using PartKey = std::pair<std::string, int>;

std::map<PartKey, std::vector<Record>> by_partition(const std::vector<Record>& rs,
                                                    const std::string* origin) {
  std::map<PartKey, std::vector<Record>> out;
  for (const auto& r : rs) out[{r.item, r.partition}].push_back(origin ? strip_origin(r, *origin) : r);
  return out;
}

TEST(KafkaMirror, HundredThousandRecordsArriveIdenticalPartitionByPartition) {
  const std::string run = unique("m100k");
  std::vector<std::string> topics = {run + ".t0", run + ".t1", run + ".t2"};
  Admin a(cluster("kafka-a", bootstrap_a()));
  Admin b(cluster("kafka-b", bootstrap_b()));
  for (const auto& t : topics) a.create(t, 4);
  auto records = make_records(topics, 4, 100000);
  produce(bootstrap_a(), records);

  RunningMirror mirror(mirror_context(run, {run + "\\.t[0-9]"}));
  std::int64_t total = 0;
  ASSERT_TRUE(wait_until([&] {
    total = 0;
    for (const auto& t : topics) total += b.total_end(t);
    return total >= 100000 || mirror.finished();
  }, 180s)) << "target has " << total << " records";
  EXPECT_TRUE(mirror.stop().is_ok()) << mirror.result().message();

  for (const auto& t : topics) EXPECT_EQ(b.partitions(t), 4) << t;
  std::vector<Record> got;
  for (const auto& t : topics) {
    auto part = read_all(bootstrap_b(), t);
    got.insert(got.end(), part.begin(), part.end());
  }
  ASSERT_EQ(got.size(), records.size());
  const std::string origin = "kafka-a";
  auto want = by_partition(records, nullptr);
  auto have = by_partition(got, &origin);
  ASSERT_EQ(want.size(), 12u);
  for (const auto& [key, list] : want) {
    const auto& h = have[key];
    ASSERT_EQ(h.size(), list.size()) << key.first << "[" << key.second << "]";
    for (std::size_t i = 0; i < list.size(); ++i) {
      ASSERT_TRUE(list[i].same_content(h[i]))
          << key.first << "[" << key.second << "] record " << i << " differs";
      ASSERT_EQ(list[i].key.has_value(), h[i].key.has_value());
      ASSERT_EQ(list[i].value.has_value(), h[i].value.has_value());
    }
  }
  auto snap = mirror.stats().snapshot();
  EXPECT_GE(snap.records_total, 100000u);
}

TEST(KafkaMirror, NewTopicWithConfigsAndPartitionIncreaseAreFollowed) {
  const std::string run = unique("mtopo");
  Admin a(cluster("kafka-a", bootstrap_a()));
  Admin b(cluster("kafka-b", bootstrap_b()));
  const std::string first = run + ".first";
  a.create(first, 2, {{"retention.ms", "7200000"}});
  produce(bootstrap_a(), {rec(first, 1, std::nullopt, "one")});

  auto ctx = mirror_context(run, {run + "\\..*"});
  RunningMirror mirror(ctx);
  ASSERT_TRUE(wait_until([&] { return b.total_end(first) >= 1; }, 60s));
  EXPECT_EQ(b.configs(first)["retention.ms"], "7200000");

  // A topic created while running, with replicated and non-replicated configs.
  const std::string later = run + ".later";
  a.create(later, 3, {{"cleanup.policy", "compact"}, {"max.message.bytes", "2000000"},
                      {"flush.messages", "1000"}});
  produce(bootstrap_a(), {rec(later, 2, "k", "v")});
  ASSERT_TRUE(wait_until([&] { return b.partitions(later) == 3 && b.total_end(later) >= 1; }, 60s));
  auto cfg = b.configs(later);
  EXPECT_EQ(cfg["cleanup.policy"], "compact");
  EXPECT_EQ(cfg["max.message.bytes"], "2000000");
  EXPECT_EQ(cfg.count("flush.messages"), 0u);  // not in the replicated allowlist

  // Partition increase on the source, then a record in the new partition.
  create_partitions(a.rk(), first, 5, 15000);
  ASSERT_TRUE(wait_until([&] { return a.partitions(first) == 5; }, 30s));
  produce(bootstrap_a(), {rec(first, 4, std::nullopt, "in p4")});
  ASSERT_TRUE(wait_until([&] { return b.partitions(first) == 5 && b.end_or_zero(first, 4) >= 1; }, 90s));
  auto got = read_all(bootstrap_b(), first);
  ASSERT_EQ(got.size(), 2u);
  std::set<int> parts;
  for (const auto& r : got) parts.insert(r.partition);
  EXPECT_EQ(parts, (std::set<int>{1, 4}));
  EXPECT_TRUE(mirror.stop().is_ok()) << mirror.result().message();
}

TEST(KafkaMirror, UnreachableSourceFailsWithClearRetryableStatus) {
  auto ctx = mirror_context(unique("munreach"), {".*"});
  ctx.source = cluster("kafka-gone", "127.0.0.1:1");
  ctx.mirror.source = "kafka-gone";
  BrokerRegistry reg;
  register_kind(reg);
  auto worker = reg.find(ClusterKind::kafka)->make_mirror(ctx);
  std::stop_source ss;
  const auto start = Clock::now();
  Status st = worker->run(ss.get_token());
  EXPECT_TRUE(st.is_retry()) << st.message();
  EXPECT_NE(st.message().find("kafka-gone"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("unreachable"), std::string::npos) << st.message();
  EXPECT_LT(Clock::now() - start, 60s);
  auto snap = ctx.stats->snapshot();
  EXPECT_EQ(snap.state, "backoff");
  EXPECT_NE(snap.last_error.find("kafka-gone"), std::string::npos);
}

TEST(KafkaMirror, TopicRegexMatchingNothingIsReportedAndDoesNotSpin) {
  const std::string run = unique("mnone");
  auto ctx = mirror_context(run, {run + "\\.never"});
  RunningMirror mirror(ctx);
  ASSERT_TRUE(wait_until([&] {
    return mirror.stats().snapshot().last_error.find("no topic") != std::string::npos;
  }, 60s));
  EXPECT_FALSE(mirror.finished());
  EXPECT_NE(mirror.stats().snapshot().last_error.find(run + "\\.never"), std::string::npos);
  const auto errors = mirror.stats().snapshot().errors_total;
  std::this_thread::sleep_for(3s);  // several refresh intervals: the warning is not repeated
  EXPECT_EQ(mirror.stats().snapshot().errors_total, errors);
  EXPECT_TRUE(mirror.stop().is_ok());
}

TEST(KafkaMirror, RejectedRecordStopsTheWorkerNamingIt) {
  const std::string run = unique("mreject");
  const std::string topic = run + ".big";
  Admin a(cluster("kafka-a", bootstrap_a()));
  Admin b(cluster("kafka-b", bootstrap_b()));
  a.create(topic, 1, {{"max.message.bytes", "3000000"}});
  // The target topic exists already with a smaller limit (config sync off).
  b.create(topic, 1, {{"max.message.bytes", "1000"}});
  produce(bootstrap_a(), {rec(topic, 0, std::nullopt, "small")});
  auto ctx = mirror_context(run, {topic});
  ctx.mirror.kafka.sync_topic_configs = false;
  RunningMirror mirror(ctx);
  // Separately, so that the producer does not put both in one batch (the target refuses whole
  // batches; librdkafka does not split them).
  ASSERT_TRUE(wait_until([&] { return b.total_end(topic) >= 1; }, 60s));
  produce(bootstrap_a(), {rec(topic, 0, std::nullopt, std::string(200000, 'b'))});
  ASSERT_TRUE(wait_until([&] { return mirror.finished(); }, 90s));
  EXPECT_TRUE(mirror.result().is_fatal()) << mirror.result().message();
  EXPECT_NE(mirror.result().message().find(topic + "[0]@1"), std::string::npos) << mirror.result().message();
  EXPECT_EQ(b.total_end(topic), 1);  // the small one arrived, nothing after the rejected one
}

TEST(KafkaMirror, RejectedRecordGoesToTheDeadLetterTopicWhenSet) {
  const std::string run = unique("mdlq");
  const std::string topic = run + ".big";
  const std::string dlq = run + ".dlq";
  Admin a(cluster("kafka-a", bootstrap_a()));
  Admin b(cluster("kafka-b", bootstrap_b()));
  a.create(topic, 1, {{"max.message.bytes", "3000000"}});
  b.create(topic, 1, {{"max.message.bytes", "1000"}});
  b.create(dlq, 1, {{"max.message.bytes", "3000000"}});
  produce(bootstrap_a(), {rec(topic, 0, std::nullopt, std::string(200000, 'b'))});
  auto ctx = mirror_context(run, {topic});
  ctx.mirror.kafka.sync_topic_configs = false;
  ctx.mirror.kafka.dead_letter_topic = dlq;
  RunningMirror mirror(ctx);
  ASSERT_TRUE(wait_until([&] { return b.total_end(dlq) >= 1; }, 90s));
  produce(bootstrap_a(), {rec(topic, 0, std::nullopt, "after")});
  ASSERT_TRUE(wait_until([&] { return b.total_end(topic) >= 1; }, 90s));
  EXPECT_FALSE(mirror.finished()) << mirror.result().message();
  auto dead = read_all(bootstrap_b(), dlq);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].value->size(), 200000u);
  bool named = false;
  for (const auto& h : dead[0].headers) named |= h.key == "mqdr-dlq-offset" && h.value == "0";
  EXPECT_TRUE(named);
  EXPECT_GE(mirror.stats().snapshot().errors_total, 1u);
  EXPECT_TRUE(mirror.stop().is_ok());
}

TEST(KafkaMirror, ExactlyOnceRestartsWithoutDuplicatesOrLoss) {
  const std::string run = unique("meos");
  const std::string topic = run + ".t";
  Admin a(cluster("kafka-a", bootstrap_a()));
  Admin b(cluster("kafka-b", bootstrap_b()));
  a.create(topic, 3);
  auto batch = [&](int from, int n) {
    std::vector<Record> rs;
    for (int i = from; i < from + n; ++i) rs.push_back(rec(topic, i % 3, std::nullopt, std::string("v") + std::to_string(i)));
    return rs;
  };
  auto ctx = mirror_context(run, {topic});
  ctx.mirror.kafka.delivery = Delivery::exactly_once;
  auto committed_on_target = [&] { return read_all(bootstrap_b(), topic).size(); };
  produce(bootstrap_a(), batch(0, 10000));
  for (int round = 0; round < 3; ++round) {
    RunningMirror mirror(ctx);
    produce(bootstrap_a(), batch(10000 + round * 5000, 5000));
    const std::size_t want = 15000u + static_cast<std::size_t>(round) * 5000u;
    ASSERT_TRUE(wait_until([&] { return b.partitions(topic) == 3 && committed_on_target() >= want; }, 120s, 1s))
        << "round " << round << ": " << mirror.result().message();
    ASSERT_TRUE(mirror.stop().is_ok()) << mirror.result().message();
    EXPECT_EQ(mirror.stats().snapshot().state, "stopped");
  }
  auto got = read_all(bootstrap_b(), topic);
  std::set<std::string> distinct;
  for (const auto& r : got) distinct.insert(*r.value);
  EXPECT_EQ(distinct.size(), 25000u);
  EXPECT_EQ(got.size(), 25000u);  // read_committed: no copy twice across restarts
}

}  // namespace
}  // namespace mqdr::kafka::test
