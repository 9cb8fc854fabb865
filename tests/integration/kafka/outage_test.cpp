// The target cluster stops for 20 s in the middle of a stream and comes back: the mirror keeps
// running and catches up, nothing lost.

#include <cstdlib>
#include <set>

#include "kafka_fixture.hpp"

namespace mqdr::kafka::test {
namespace {

int harness(const std::string& args) {
  const std::string cmd = std::string(MQDR_SOURCE_DIR) + "/tests/harness/harness.sh " + args + " >/dev/null 2>&1";
  return std::system(cmd.c_str());
}

TEST(KafkaOutage, TargetDownTwentySecondsThenCatchesUp) {
  const std::string run = unique("mdown");
  const std::string topic = run + ".t";
  Admin a(cluster("kafka-a", bootstrap_a()));
  a.create(topic, 2);
  auto batch = [&](int from, int n) {
    std::vector<Record> rs;
    for (int i = from; i < from + n; ++i) rs.push_back(rec(topic, i % 2, std::nullopt, "v" + std::to_string(i)));
    return rs;
  };
  produce(bootstrap_a(), batch(0, 5000));
  RunningMirror mirror(mirror_context(run, {topic}));
  {
    Admin b(cluster("kafka-b", bootstrap_b()));
    ASSERT_TRUE(wait_until([&] { return b.total_end(topic) >= 5000; }, 60s));
  }

  ASSERT_EQ(harness("down kafka-b"), 0);
  // The source keeps taking records during the outage.
  produce(bootstrap_a(), batch(5000, 5000));
  std::this_thread::sleep_for(20s);  // the outage itself (scenario length, not a synchronization)
  EXPECT_FALSE(mirror.finished()) << mirror.result().message();
  ASSERT_EQ(harness("up kafka-b"), 0);
  produce(bootstrap_a(), batch(10000, 5000));

  Admin b(cluster("kafka-b", bootstrap_b()));
  ASSERT_TRUE(wait_until([&] { return b.total_end(topic) >= 15000 || mirror.finished(); }, 180s, 1s))
      << mirror.result().message();
  EXPECT_FALSE(mirror.finished()) << mirror.result().message();
  std::set<std::string> seen;
  for (const auto& r : read_all(bootstrap_b(), topic)) seen.insert(*r.value);
  EXPECT_EQ(seen.size(), 15000u);
  EXPECT_TRUE(mirror.stop().is_ok()) << mirror.result().message();
}

}  // namespace
}  // namespace mqdr::kafka::test
