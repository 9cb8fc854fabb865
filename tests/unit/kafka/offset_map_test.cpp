#include "kafka/offset_map.hpp"

#include <gtest/gtest.h>

namespace mqdr::kafka {
namespace {

// Persists every change of `pm` into `persisted` the way the sink does.
void persist(PartitionMap& pm, OffsetMap& persisted, const std::string& topic, int p) {
  for (const auto& [src, run] : pm.take_changes()) {
    persisted.apply(OffsetMap::encode_key(topic, p, src),
                    run ? std::optional<std::string>(OffsetMap::encode_value(*run)) : std::nullopt);
  }
}

TEST(PartitionMap, ContiguousRecordsMakeOneRun) {
  PartitionMap pm;
  for (int i = 0; i < 100; ++i) pm.add(10 + i, 500 + i);
  ASSERT_EQ(pm.runs().size(), 1u);
  EXPECT_EQ(pm.runs()[0], (kafka::Run{10, 500, 100}));
  EXPECT_EQ(*pm.to_target(10), 500);
  EXPECT_EQ(*pm.to_target(55), 545);
  EXPECT_EQ(*pm.to_target(110), 600);  // everything consumed: after the last copy
  EXPECT_EQ(*pm.to_target(5000), 600);
  EXPECT_EQ(*pm.to_target(0), 500);    // before the first mirrored record
  EXPECT_EQ(*pm.to_source(545), 55);
  EXPECT_EQ(*pm.to_source(600), 110);
}

TEST(PartitionMap, GapsStartRunsAndTranslateToTheNextRecord) {
  PartitionMap pm;
  // Source offsets 0,1,2, then 5,6 (3,4 compacted away or a transaction marker), then 9.
  for (std::int64_t s : {0, 1, 2, 5, 6, 9}) pm.add(s, pm.empty() ? 0 : pm.tgt_end());
  ASSERT_EQ(pm.runs().size(), 3u);
  EXPECT_EQ(pm.runs()[1], (kafka::Run{5, 3, 2}));
  EXPECT_EQ(*pm.to_target(3), 3);   // committed at 3: next record is source 5 = target 3
  EXPECT_EQ(*pm.to_target(4), 3);
  EXPECT_EQ(*pm.to_target(6), 4);
  EXPECT_EQ(*pm.to_target(7), 5);   // next is source 9 = target 5
  EXPECT_EQ(*pm.to_target(10), 6);
  EXPECT_EQ(*pm.to_target(12), 6);  // e.g. after a transaction marker at 10
  EXPECT_EQ(*pm.to_source(5), 9);
  EXPECT_EQ(*pm.to_source(3), 5);
}

TEST(PartitionMap, TargetGapsAlsoStartRuns) {
  PartitionMap pm;
  pm.add(0, 0);
  pm.add(1, 1);
  pm.add(2, 4);  // target offsets 2,3 are someone else's records
  ASSERT_EQ(pm.runs().size(), 2u);
  EXPECT_EQ(*pm.to_target(2), 4);
  EXPECT_EQ(*pm.to_source(2), 2);  // committed at target 2: resume at source 2
}

TEST(PartitionMap, RecopiedRecordsWinSoNothingIsReadTwice) {
  PartitionMap pm;
  for (int i = 0; i < 10; ++i) pm.add(i, i);
  // Crash after source commit at 6: records 6..9 are copied again to target 10..13.
  for (int i = 6; i < 10; ++i) pm.add(i, 4 + i);
  EXPECT_EQ(*pm.to_target(6), 10);
  EXPECT_EQ(*pm.to_target(8), 12);
  EXPECT_EQ(*pm.to_target(3), 3);
  EXPECT_EQ(*pm.to_target(10), 14);
  ASSERT_EQ(pm.runs().size(), 2u);
  EXPECT_EQ(pm.runs()[0], (kafka::Run{0, 0, 6}));
  EXPECT_EQ(pm.runs()[1], (kafka::Run{6, 10, 4}));
}

TEST(PartitionMap, RecreatedTargetDropsContradictedRuns) {
  PartitionMap pm;
  for (int i = 0; i < 5; ++i) pm.add(i, 100 + i);
  pm.add(5, 0);  // target topic recreated
  ASSERT_EQ(pm.runs().size(), 1u);
  EXPECT_EQ(pm.runs()[0], (kafka::Run{5, 0, 1}));
}

TEST(OffsetMap, PersistedChangesRebuildTheSameRuns) {
  PartitionMap pm;
  OffsetMap persisted;
  for (int i = 0; i < 50; ++i) {
    pm.add(i * (i % 7 == 0 ? 2 : 1) + 1000, 10 * 0 + i + 7);
    if (i % 9 == 0) persist(pm, persisted, "orders.eu", 3);
  }
  for (int i = 20; i < 30; ++i) pm.add(1000 + i, pm.tgt_end());  // a re-copy truncates
  persist(pm, persisted, "orders.eu", 3);
  const PartitionMap* back = persisted.find("orders.eu", 3);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->runs(), pm.runs());
}

TEST(OffsetMap, MalformedRecordsAreIgnored) {
  OffsetMap m;
  EXPECT_FALSE(m.apply("nonsense", std::string("1 2")));
  EXPECT_FALSE(m.apply("t|x|3", std::string("1 2")));
  EXPECT_FALSE(m.apply("t|0|3", std::string("12")));
  EXPECT_TRUE(m.apply("a|b|0|3", std::string("10 2")));  // '|' never in topic names, but be lenient
  ASSERT_NE(m.find("a|b", 0), nullptr);
  EXPECT_EQ(*m.find("a|b", 0)->to_target(4), 11);
  EXPECT_TRUE(m.apply("a|b|0|3", std::nullopt));
  EXPECT_TRUE(m.find("a|b", 0)->empty());
}

}  // namespace
}  // namespace mqdr::kafka

namespace mqdr::kafka {
namespace {

TEST(TranslateBack, CopiedRegionGoesBackExactlyThenOwnCopies) {
  // A -> B copied A offsets 0..99 (with a gap at 50..59) to B offsets 0..89.
  PartitionMap forward;
  for (int s = 0; s < 100; ++s) {
    if (s >= 50 && s < 60) continue;
    forward.add(s, forward.empty() ? 0 : forward.tgt_end());
  }
  // After failover, B took 20 records of its own at 90..109; B -> A copied them to A 130..149.
  PartitionMap own;
  for (int t = 90; t < 110; ++t) own.add(t, 130 + (t - 90));
  EXPECT_EQ(*translate_back(&forward, &own, 0), 0);
  EXPECT_EQ(*translate_back(&forward, &own, 49), 49);
  EXPECT_EQ(*translate_back(&forward, &own, 50), 60);  // B 50 is A 60 (A 50..59 were gaps)
  EXPECT_EQ(*translate_back(&forward, &own, 89), 99);
  EXPECT_EQ(*translate_back(&forward, &own, 90), 130);  // first record written on B
  EXPECT_EQ(*translate_back(&forward, &own, 100), 140);
  EXPECT_EQ(*translate_back(&forward, &own, 110), 150);
  // Before B -> A copied anything: past the copied region = after the last A original.
  EXPECT_EQ(*translate_back(&forward, nullptr, 95), 100);
  EXPECT_EQ(*translate_back(nullptr, &own, 95), 135);
  EXPECT_FALSE(translate_back(nullptr, nullptr, 5).has_value());
}

}  // namespace
}  // namespace mqdr::kafka
