// Exact consumer-group offset translation: a group consumes part of the source, the mirror syncs
// its offsets, and a consumer of the same group on the target reads exactly the rest (zero lost,
// zero re-read), also across offset gaps (transaction markers, aborted transactions, compaction).

#include <set>

#include "kafka/ops.hpp"
#include "kafka/worker.hpp"
#include "kafka_fixture.hpp"

namespace mqdr::kafka::test {
namespace {

// A consumer of `group` (subscribed to `topics`) reads up to `max` records, commits what it
// read (last offset + 1 per partition) synchronously and leaves. Returns the values read.
std::vector<std::string> consume_group(const std::string& bootstrap, const std::string& group,
                                       const std::vector<std::string>& topics, std::size_t max,
                                       std::chrono::milliseconds idle) {
  ClientLabel label{"test group consumer"};
  Handle rk = make_client(RD_KAFKA_CONSUMER,
                          make_conf(cluster("c", bootstrap),
                                    {{"group.id", group}, {"enable.auto.commit", "false"},
                                     {"auto.offset.reset", "earliest"},
                                     {"isolation.level", "read_committed"}},
                                    {}, &label));
  rd_kafka_poll_set_consumer(rk.get());
  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  for (const auto& t : topics) rd_kafka_topic_partition_list_add(sub, t.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk.get(), sub);
  rd_kafka_topic_partition_list_destroy(sub);
  std::vector<std::string> values;
  std::map<std::pair<std::string, int>, std::int64_t> next;
  auto last = Clock::now();
  const auto until = Clock::now() + 120s;
  while (values.size() < max && Clock::now() - last < idle && Clock::now() < until) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      values.emplace_back(static_cast<const char*>(m->payload), m->len);
      next[{rd_kafka_topic_name(m->rkt), m->partition}] = m->offset + 1;
      last = Clock::now();
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_topic_partition_list_t* offs = rd_kafka_topic_partition_list_new(static_cast<int>(next.size()));
  for (const auto& [tp, off] : next) rd_kafka_topic_partition_list_add(offs, tp.first.c_str(), tp.second)->offset = off;
  if (offs->cnt > 0) {
    EXPECT_EQ(rd_kafka_commit(rk.get(), offs, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  rd_kafka_topic_partition_list_destroy(offs);
  rd_kafka_consumer_close(rk.get());
  return values;
}

// Produces `n` records in transactions of `per_txn`, aborting every third transaction.
// Returns the values of the committed records.
std::vector<std::string> produce_transactional(const std::string& topic, int partitions, int n,
                                               int per_txn) {
  ClientLabel label{"test tx producer"};
  Handle rk = make_client(RD_KAFKA_PRODUCER,
                          make_conf(cluster("tx", bootstrap_a()),
                                    {{"transactional.id", unique("tx")}, {"acks", "all"}}, {}, &label));
  auto check = [](rd_kafka_error_t* e) {
    if (e != nullptr) {
      std::string msg = rd_kafka_error_string(e);
      rd_kafka_error_destroy(e);
      throw std::runtime_error("transaction: " + msg);
    }
  };
  check(rd_kafka_init_transactions(rk.get(), 30000));
  std::vector<std::string> committed;
  for (int start = 0, txn = 0; start < n; start += per_txn, ++txn) {
    check(rd_kafka_begin_transaction(rk.get()));
    std::vector<std::string> batch;
    for (int i = start; i < std::min(n, start + per_txn); ++i) {
      std::string v = topic + "#" + std::to_string(i);
      rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(i % partitions),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_VALUE(v.data(), v.size()), RD_KAFKA_V_END);
      batch.push_back(v);
    }
    // Written (then aborted or committed), so aborted records really occupy offsets.
    if (rd_kafka_flush(rk.get(), 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("transaction: flush timed out");
    }
    if (txn % 3 == 2) {
      check(rd_kafka_abort_transaction(rk.get(), 30000));
    } else {
      check(rd_kafka_commit_transaction(rk.get(), 30000));
      committed.insert(committed.end(), batch.begin(), batch.end());
    }
  }
  return committed;
}

std::vector<Record> plain_records(const std::string& topic, int partitions, int n) {
  std::vector<Record> out;
  for (int i = 0; i < n; ++i) {
    Record r;
    r.item = topic;
    r.partition = i % partitions;
    r.key = "k" + std::to_string(i % 7);
    r.value = topic + "#" + std::to_string(i);
    out.push_back(std::move(r));
  }
  return out;
}

TEST(KafkaOffsets, GroupResumesOnTargetWithZeroLostAndZeroReread) {
  const std::string run = unique("moff");
  const std::string plain = run + ".plain";
  const std::string tx = run + ".tx";
  const std::string compacted = run + ".compacted";
  const std::string group = run + "-app";
  Admin a(cluster("kafka-a", bootstrap_a()));
  Admin b(cluster("kafka-b", bootstrap_b()));
  a.create(plain, 3);
  a.create(tx, 2);
  a.create(compacted, 1, {{"cleanup.policy", "compact"}, {"segment.ms", "100"},
                          {"min.cleanable.dirty.ratio", "0.01"}, {"delete.retention.ms", "100"},
                          {"min.compaction.lag.ms", "0"}});

  std::set<std::string> all;
  auto plain_recs = plain_records(plain, 3, 3000);
  produce(bootstrap_a(), plain_recs);
  for (const auto& r : plain_recs) all.insert(*r.value);
  for (const auto& v : produce_transactional(tx, 2, 1200, 50)) all.insert(v);

  // Compacted topic: many versions of few keys in several segments, then wait for the cleaner so
  // the source offsets have holes.
  for (int round = 0; round < 4; ++round) {
    std::vector<Record> rs;
    for (int i = 0; i < 100; ++i) {
      rs.push_back(rec(compacted, 0, "key" + std::to_string(i % 10),
                       compacted + "#" + std::to_string(round * 100 + i)));
    }
    produce(bootstrap_a(), rs);
    std::this_thread::sleep_for(300ms);  // lets segment.ms pass so the next append rolls
  }
  produce(bootstrap_a(), {rec(compacted, 0, "tail", compacted + "#tail")});
  std::vector<Record> survivors;
  ASSERT_TRUE(wait_until([&] {
    survivors = read_all(bootstrap_a(), compacted);
    return survivors.size() < 401;
  }, 120s, 2s)) << "the log cleaner did not compact " << compacted;
  for (const auto& r : survivors) all.insert(*r.value);

  // The application consumes about half and commits.
  const std::vector<std::string> topics = {plain, tx, compacted};
  auto first = consume_group(bootstrap_a(), group, topics, all.size() / 2, 10s);
  ASSERT_GT(first.size(), 0u);
  ASSERT_LT(first.size(), all.size());

  auto ctx = mirror_context(run, {run + "\\..*"});
  ctx.mirror.kafka.groups = {run + "-.*"};
  {
    RunningMirror mirror(ctx);
    // Caught up when the target holds every committed record of the source.
    ASSERT_TRUE(wait_until([&] {
      std::size_t n = 0;
      for (const auto& t : topics) {
        if (b.partitions(t) == 0) return false;
        n += read_all(bootstrap_b(), t).size();
      }
      return n >= all.size() || mirror.finished();
    }, 180s, 1s));
    ASSERT_TRUE(mirror.stop().is_ok()) << mirror.result().message();
  }
  // Failover: the final sync carries the group's offsets over.
  BrokerRegistry reg;
  register_kind(reg);
  auto ops = reg.find(ClusterKind::kafka)->make_mirror_ops(ctx);
  Status st = ops->final_sync(30s);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(ops->lag(10s).records, 0);
  auto verify = ops->verify(60s);
  EXPECT_TRUE(verify.equal) << verify.first_difference;

  auto rest = consume_group(bootstrap_b(), group, topics, all.size(), 8s);
  std::set<std::string> seen(first.begin(), first.end());
  std::multiset<std::string> again;
  for (const auto& v : rest) {
    if (seen.count(v) != 0) again.insert(v);
    seen.insert(v);
  }
  EXPECT_TRUE(again.empty()) << again.size() << " records read again, e.g. " << *again.begin();
  EXPECT_EQ(first.size() + rest.size(), all.size());
  EXPECT_EQ(seen, all);
}

}  // namespace
}  // namespace mqdr::kafka::test
