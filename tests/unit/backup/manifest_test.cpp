// Manifest checksum, names, chains, retention and the schedule: table-driven, no clock, no broker.
#include <gtest/gtest.h>

#include "backup/format.hpp"
#include "backup/manifest.hpp"

namespace mqdr::backup {
namespace {

using namespace std::chrono_literals;

TimePoint at(const std::string& compact) { return *parse_compact_time(compact); }

Manifest sample_manifest() {
  Manifest m;
  m.name = "20261125T020000Z-incremental";
  m.plan = "p";
  m.cluster = "c";
  m.kind = "kafka";
  m.full = false;
  m.parent = "20261125T010000Z-full";
  m.started_at = "2026-11-25T02:00:00Z";
  m.completed_at = "2026-11-25T02:00:05Z";
  m.topology = {{"topics", {{"t", {{"partitions", 2}}}}}};
  PartitionInfo p;
  p.partition = 1;
  p.first = 10;
  p.last = 19;
  p.next = 20;
  p.records = 10;
  p.segments.push_back(SegmentInfo{"t/1-10.seg.zst", 10, 19, 10, 123, std::string(64, 'a')});
  m.items.push_back(ItemInfo{"t", {p}});
  m.records = 10;
  m.raw_bytes = 400;
  m.bytes = 123;
  return m;
}

TEST(Manifest, RoundTripsThroughJson) {
  const Manifest m = sample_manifest();
  const Manifest back = manifest_from_json(to_json(m));
  EXPECT_EQ(back.name, m.name);
  EXPECT_EQ(back.parent, m.parent);
  EXPECT_FALSE(back.full);
  EXPECT_EQ(back.topology, m.topology);
  ASSERT_EQ(back.items.size(), 1u);
  EXPECT_EQ(back.items[0].partitions[0].segments[0].sha256, std::string(64, 'a'));
  EXPECT_EQ(back.items[0].partitions[0].next, 20);
}

TEST(Manifest, AnyAlterationIsRefused) {
  auto j = to_json(sample_manifest());
  for (const char* key : {"plan", "records", "parent"}) {
    auto altered = j;
    altered[key] = altered[key].is_string() ? nlohmann::json("x") : nlohmann::json(11);
    EXPECT_THROW(manifest_from_json(altered), std::runtime_error) << key;
  }
  auto seg = j;
  seg["items"][0]["partitions"][0]["segments"][0]["sha256"] = std::string(64, 'b');
  EXPECT_THROW(manifest_from_json(seg), std::runtime_error);
  auto escape = j;
  escape["items"][0]["partitions"][0]["segments"][0]["file"] = "../../etc/passwd";
  escape.erase("manifest_sha256");
  escape["manifest_sha256"] = sha256_hex(escape.dump());
  EXPECT_THROW(manifest_from_json(escape), std::runtime_error) << "a segment path may not leave the backup";
}

TEST(Names, TimesAndItems) {
  const TimePoint t = at("20261125T020304Z");
  EXPECT_EQ(compact_time(t), "20261125T020304Z");
  EXPECT_EQ(rfc3339(t), "2026-11-25T02:03:04Z");
  EXPECT_EQ(backup_name(t, true), "20261125T020304Z-full");
  EXPECT_EQ(backup_name(t, false), "20261125T020304Z-incremental");
  EXPECT_FALSE(parse_compact_time("2026-11-25").has_value());
  EXPECT_EQ(temp_name("x"), ".x.tmp");
  EXPECT_EQ(encode_item("orders.created"), "orders.created");
  EXPECT_EQ(encode_item("a/b c"), "a%2Fb%20c");
  EXPECT_EQ(encode_item(".hidden"), "%2Ehidden");
  EXPECT_EQ(encode_item(".."), "%2E.");
  EXPECT_EQ(segment_path("t", 3, 42), "t/3-42.seg.zst");
  EXPECT_EQ(segment_path("t", 3, 42, false), "t/3-42.seg");
}

BackupEntry full(const std::string& t) { return BackupEntry{t + "-full", true, "", at(t)}; }
BackupEntry inc(const std::string& t, const std::string& parent) {
  return BackupEntry{t + "-incremental", false, parent, at(t)};
}

TEST(Chain, FollowsParentsToTheFull) {
  const std::vector<BackupEntry> all = {full("20261101T000000Z"), inc("20261101T010000Z", "20261101T000000Z-full"),
                                        inc("20261101T020000Z", "20261101T010000Z-incremental")};
  EXPECT_EQ(chain_of(all, "20261101T020000Z-incremental"),
            (std::vector<std::string>{"20261101T000000Z-full", "20261101T010000Z-incremental",
                                      "20261101T020000Z-incremental"}));
  EXPECT_EQ(chain_of(all, "20261101T000000Z-full"), std::vector<std::string>{"20261101T000000Z-full"});
  const std::vector<BackupEntry> broken = {all[0], all[2]};
  try {
    chain_of(broken, "20261101T020000Z-incremental");
    FAIL() << "a missing parent must be reported";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("20261101T010000Z-incremental"), std::string::npos) << e.what();
  }
}

struct RetentionCase {
  const char* what;
  std::vector<BackupEntry> backups;
  std::string now;
  std::chrono::milliseconds retention;
  std::vector<std::string> victims;
};

TEST(Retention, KeepsEveryChainItMust) {
  const std::vector<RetentionCase> cases = {
      {"all recent", {full("20261101T000000Z"), inc("20261101T010000Z", "20261101T000000Z-full")},
       "20261101T020000Z", 24h, {}},
      {"an old chain replaced by a newer full",
       {full("20261001T000000Z"), inc("20261001T010000Z", "20261001T000000Z-full"), full("20261101T000000Z")},
       "20261101T020000Z", 24h * 30, {"20261001T000000Z-full", "20261001T010000Z-incremental"}},
      {"an old full kept for a retained incremental",
       {full("20261001T000000Z"), inc("20261001T010000Z", "20261001T000000Z-full"),
        inc("20261030T000000Z", "20261001T010000Z-incremental")},
       "20261101T000000Z", 24h * 10, {}},
      {"everything expired: the newest chain stays",
       {full("20261001T000000Z"), full("20261002T000000Z"), inc("20261002T010000Z", "20261002T000000Z-full")},
       "20261201T000000Z", 24h, {"20261001T000000Z-full"}},
      {"an expired incremental of a retained full goes",
       {full("20261001T000000Z"), inc("20261001T010000Z", "20261001T000000Z-full"), full("20261003T000000Z"),
        inc("20261003T010000Z", "20261003T000000Z-full")},
       "20261003T020000Z", 24h, {"20261001T000000Z-full", "20261001T010000Z-incremental"}},
      {"nothing to do", {}, "20261003T020000Z", 24h, {}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(retention_victims(c.backups, at(c.now), c.retention), c.victims) << c.what;
  }
}

struct ScheduleCase {
  const char* what;
  std::vector<BackupEntry> backups;
  std::string now;
  ScheduleDecision::Kind kind;
  std::string next_due;  // for kind none
};

TEST(Schedule, FullThenIncrementals) {
  using K = ScheduleDecision::Kind;
  const std::vector<ScheduleCase> cases = {
      {"no backup yet", {}, "20261101T000000Z", K::full, ""},
      {"only incrementals (their full was deleted by hand)", {inc("20261101T000000Z", "x")}, "20261101T000100Z", K::full, ""},
      {"full recent, incremental not due", {full("20261101T000000Z")}, "20261101T003000Z", K::none, "20261101T010000Z"},
      {"incremental due", {full("20261101T000000Z")}, "20261101T010000Z", K::incremental, ""},
      {"incremental due after the last incremental",
       {full("20261101T000000Z"), inc("20261101T010000Z", "20261101T000000Z-full")}, "20261101T013000Z", K::none,
       "20261101T020000Z"},
      {"full due", {full("20261101T000000Z"), inc("20261101T230000Z", "20261101T000000Z-full")}, "20261102T000000Z",
       K::full, ""},
      {"full due before the next incremental",
       {full("20261101T000000Z"), inc("20261101T233000Z", "20261101T000000Z-full")}, "20261101T234000Z", K::none,
       "20261102T000000Z"},
  };
  for (const auto& c : cases) {
    const auto d = schedule(c.backups, at(c.now), 24h, 1h);
    EXPECT_EQ(d.kind, c.kind) << c.what;
    if (c.kind == K::none) {
      EXPECT_EQ(compact_time(d.next_due), c.next_due) << c.what;
    }
  }
}

}  // namespace
}  // namespace mqdr::backup
