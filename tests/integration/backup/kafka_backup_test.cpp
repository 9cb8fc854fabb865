// Kafka backups against the harness brokers: full + incremental backup of kafka-a restored into
// kafka-b (content, partitions, configs and group offsets compared), corruption found by
// `mqdr verify --backup`, kill -9 during a restore (rerun: no duplicates, nothing lost) and
// during a backup (nothing that looks complete is left; the next run succeeds).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "backup/manifest.hpp"
#include "tests/integration/backup/backup_fixture.hpp"
#include "tests/integration/kafka/kafka_fixture.hpp"

namespace mqdr::backup::test {
namespace {

using kafka::test::Admin;
using kafka::test::produce;
using kafka::test::read_all;

class KafkaBackup : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& ep = mqdr::test::Endpoints::get();
    MQDR_REQUIRE_BROKER(ep.kafka_a);
    MQDR_REQUIRE_BROKER(ep.kafka_b);
    a_ = ep.kafka_a;
    b_ = ep.kafka_b;
  }
  void config(Scratch& s, const std::string& plan, const std::string& topic_re,
              const std::string& extra = "") {
    s.write_config("  ka: { kind: kafka, bootstrap_servers: '" + a_ + "' }\n"
                   "  kb: { kind: kafka, bootstrap_servers: '" + b_ + "' }\n",
                   "  - name: " + plan + "\n    cluster: ka\n    topics: ['" + topic_re + "']\n" +
                       extra + "    dir: " + s.backups().string() + "\n");
  }
  // Records with keys (one null), headers (one null value), timestamps and a tombstone.
  static std::vector<Record> records(const std::string& topic, int partitions, int n, int from) {
    std::vector<Record> out;
    for (int i = from; i < from + n; ++i) {
      Record r = kafka::test::rec(topic, i % partitions,
                                  i % 17 == 0 ? std::nullopt : std::optional<std::string>("key-" + std::to_string(i)),
                                  i % 29 == 0 ? std::nullopt : std::optional<std::string>(std::string(40 + i % 50, 'a' + i % 26)));
      r.headers = {{"h1", "v" + std::to_string(i)}, {"h2", std::nullopt}};
      r.timestamp_ms = 1700000000000 + i;
      out.push_back(std::move(r));
    }
    return out;
  }
  static std::map<int, std::vector<Record>> by_partition(const std::vector<Record>& rs) {
    std::map<int, std::vector<Record>> out;
    for (const auto& r : rs) out[r.partition].push_back(r);
    return out;
  }
  static void expect_same(const std::vector<Record>& src, const std::vector<Record>& dst) {
    auto a = by_partition(src), b = by_partition(dst);
    ASSERT_EQ(a.size(), b.size());
    for (auto& [p, ra] : a) {
      auto& rb = b[p];
      ASSERT_EQ(ra.size(), rb.size()) << "partition " << p;
      for (std::size_t i = 0; i < ra.size(); ++i) {
        ASSERT_TRUE(ra[i].same_content(rb[i])) << "partition " << p << " record " << i;
      }
    }
  }
  std::string a_, b_;
};

TEST_F(KafkaBackup, FullAndIncrementalRestoredIntoTheOtherClusterAreIdentical) {
  Scratch s("kbk");
  const std::string topic = unique_name("bk-orders");
  const std::string restored = topic + "-restored";
  const std::string plan = "kplan";
  config(s, plan, topic);
  Admin admin_a(kafka::test::cluster("ka", a_));
  admin_a.create(topic, 3, {{"retention.ms", "86400000"}, {"cleanup.policy", "delete"}});
  produce(a_, records(topic, 3, 300, 0));
  const std::string group = unique_name("bk-group");
  kafka::alter_group_offsets(admin_a.rk(), group, {{{topic, 0}, 40}, {{topic, 1}, 7}}, 15000);

  RunResult full = s.mqdr({"backup", "-c", s.config().string(), "--plan", plan});
  ASSERT_EQ(full.rc, 0) << full.out;
  produce(a_, records(topic, 3, 200, 300));
  RunResult inc = s.mqdr({"backup", "-c", s.config().string(), "--plan", plan});
  ASSERT_EQ(inc.rc, 0) << inc.out;

  const auto names = s.backup_names(plan);
  ASSERT_EQ(names.size(), 2u);
  EXPECT_TRUE(names[0].ends_with("-full"));
  EXPECT_TRUE(names[1].ends_with("-incremental"));
  const Manifest m0 = read_manifest(s.backups() / plan / names[0]);
  const Manifest m1 = read_manifest(s.backups() / plan / names[1]);
  EXPECT_EQ(m0.records, 300u);
  EXPECT_EQ(m1.records, 200u) << "an incremental holds only what came after its parent";
  EXPECT_EQ(m1.parent, names[0]);

  RunResult v = s.mqdr({"verify", "--backup", (s.backups() / plan / names[1]).string()});
  EXPECT_EQ(v.rc, 0) << v.out;

  RunResult r = s.mqdr({"restore", "-c", s.config().string(), "--from", (s.backups() / plan / names[1]).string(),
                  "--to", "kb", "--rename", topic + "=" + restored});
  ASSERT_EQ(r.rc, 0) << r.out;

  Admin admin_b(kafka::test::cluster("kb", b_));
  EXPECT_EQ(admin_b.partitions(restored), 3);
  EXPECT_EQ(admin_b.configs(restored)["retention.ms"], "86400000");
  expect_same(read_all(a_, topic), read_all(b_, restored));
  const auto offsets = kafka::list_group_offsets(admin_b.rk(), group, 15000);
  EXPECT_EQ(offsets.at({restored, 0}), 40);
  EXPECT_EQ(offsets.at({restored, 1}), 7);
}

TEST_F(KafkaBackup, CorruptionIsFoundAndNamed) {
  Scratch s("kbk");
  const std::string topic = unique_name("bk-corrupt");
  config(s, "kc", topic);
  Admin admin_a(kafka::test::cluster("ka", a_));
  admin_a.create(topic, 1);
  produce(a_, records(topic, 1, 2000, 0));
  ASSERT_EQ(s.mqdr({"backup", "-c", s.config().string(), "--plan", "kc"}).rc, 0);
  const fs::path good = s.backups() / "kc" / s.backup_names("kc").at(0);

  auto fresh = [&](const std::string& name) {
    const fs::path d = s.dir() / name / good.filename();
    copy_tree(good, d);
    return d;
  };
  {  // one byte of a segment
    const fs::path d = fresh("flip");
    const fs::path seg = segment_files(d).at(0);
    flip_byte(seg, fs::file_size(seg) / 2);
    RunResult v = s.mqdr({"verify", "--backup", d.string()});
    EXPECT_EQ(v.rc, 3) << v.out;
    EXPECT_NE(v.out.find(seg.string()), std::string::npos) << v.out;
    EXPECT_NE(v.out.find("item '" + topic + "' partition 0"), std::string::npos) << v.out;
    EXPECT_NE(v.out.find("position"), std::string::npos) << v.out;
    RunResult r = s.mqdr({"restore", "-c", s.config().string(), "--from", d.string(), "--to", "kb",
                    "--rename", topic + "=" + topic + "-never"});
    EXPECT_EQ(r.rc, 1) << "a corrupt backup is not restored";
  }
  {  // one byte of the manifest
    const fs::path d = fresh("manifest");
    flip_byte(d / "manifest.json", 40);
    RunResult v = s.mqdr({"verify", "--backup", d.string()});
    EXPECT_EQ(v.rc, 3) << v.out;
    EXPECT_NE(v.out.find("manifest.json"), std::string::npos) << v.out;
  }
  {  // a truncated segment
    const fs::path d = fresh("truncated");
    const fs::path seg = segment_files(d).at(0);
    fs::resize_file(seg, fs::file_size(seg) - 7);
    RunResult v = s.mqdr({"verify", "--backup", d.string()});
    EXPECT_EQ(v.rc, 3) << v.out;
    EXPECT_NE(v.out.find(seg.string()), std::string::npos) << v.out;
  }
  {  // a deleted segment
    const fs::path d = fresh("deleted");
    const fs::path seg = segment_files(d).at(0);
    fs::remove(seg);
    RunResult v = s.mqdr({"verify", "--backup", d.string()});
    EXPECT_EQ(v.rc, 3) << v.out;
    EXPECT_NE(v.out.find("missing"), std::string::npos) << v.out;
    EXPECT_NE(v.out.find(seg.string()), std::string::npos) << v.out;
  }
  RunResult ok = s.mqdr({"verify", "--backup", good.string()});
  EXPECT_EQ(ok.rc, 0) << ok.out;
}

TEST_F(KafkaBackup, Kill9DuringRestoreThenRerunHasNoDuplicatesAndNoLoss) {
  Scratch s("kbk");
  const std::string topic = unique_name("bk-kill-restore");
  const std::string restored = topic + "-r";
  config(s, "kk", topic);
  Admin admin_a(kafka::test::cluster("ka", a_));
  admin_a.create(topic, 2);
  constexpr int kRecords = 200000;
  std::vector<Record> rs;
  for (int i = 0; i < kRecords; ++i) {
    std::string value(200, 'x');
    value += std::to_string(i);
    rs.push_back(kafka::test::rec(topic, i % 2, fmt::format("k{}", i), std::move(value)));
  }
  produce(a_, rs);
  ASSERT_EQ(s.mqdr({"backup", "-c", s.config().string(), "--plan", "kk"}).rc, 0);
  const fs::path bk = s.backups() / "kk" / s.backup_names("kk").at(0);

  Admin admin_b(kafka::test::cluster("kb", b_));
  std::int64_t at_kill = 0;
  {
    Child c({"restore", "-c", s.config().string(), "--from", bk.string(), "--to", "kb", "--rename",
             topic + "=" + restored},
            s.dir() / "restore-killed.log");
    ASSERT_TRUE(wait_for([&] {
      return !c.running() || (admin_b.partitions(restored) == 2 && admin_b.total_end(restored) > 0);
    }, 120s)) << c.output();
    ASSERT_TRUE(c.running()) << "the restore ended before it could be killed: " << c.output();
    c.kill9();
    at_kill = admin_b.total_end(restored);
  }
  ASSERT_LT(at_kill, kRecords) << "the restore finished before it could be killed";
  RunResult again = s.mqdr({"restore", "-c", s.config().string(), "--from", bk.string(), "--to", "kb",
                      "--rename", topic + "=" + restored});
  ASSERT_EQ(again.rc, 0) << again.out;
  EXPECT_EQ(admin_b.total_end(restored), kRecords) << "duplicates or losses";
  expect_same(read_all(a_, topic), read_all(b_, restored));
}

TEST_F(KafkaBackup, Kill9DuringBackupLeavesNothingThatLooksComplete) {
  Scratch s("kbk");
  const std::string topic = unique_name("bk-kill-backup");
  config(s, "kb9", topic);
  Admin admin_a(kafka::test::cluster("ka", a_));
  admin_a.create(topic, 1);
  std::vector<Record> rs;
  for (int i = 0; i < 200000; ++i) rs.push_back(kafka::test::rec(topic, 0, std::nullopt, std::string(300, 'b')));
  produce(a_, rs);
  {
    Child c({"backup", "-c", s.config().string(), "--plan", "kb9"}, s.dir() / "backup-killed.log");
    // Killed once it is writing its temporary directory.
    ASSERT_TRUE(wait_for([&] {
      if (!c.running()) return true;
      std::error_code ec;
      for (const auto& de : fs::recursive_directory_iterator(s.backups() / "kb9", ec)) {
        if (de.path().string().find(".seg") != std::string::npos) return true;
      }
      return false;
    }, 120s)) << c.output();
    ASSERT_TRUE(c.running()) << "the backup ended before it could be killed: " << c.output();
    c.kill9();
  }
  EXPECT_TRUE(s.backup_names("kb9").empty()) << "a killed backup must not look complete";
  EXPECT_TRUE(list_backups(s.backups() / "kb9").empty());
  RunResult again = s.mqdr({"backup", "-c", s.config().string(), "--plan", "kb9"});
  ASSERT_EQ(again.rc, 0) << again.out;
  const auto names = s.backup_names("kb9");
  ASSERT_EQ(names.size(), 1u);
  EXPECT_TRUE(names[0].ends_with("-full"));
  EXPECT_EQ(read_manifest(s.backups() / "kb9" / names[0]).records, 200000u);
  RunResult v = s.mqdr({"verify", "--backup", (s.backups() / "kb9" / names[0]).string()});
  EXPECT_EQ(v.rc, 0) << v.out;
  // The interrupted run's temporary directory is gone.
  for (const auto& de : fs::directory_iterator(s.backups() / "kb9")) {
    EXPECT_FALSE(de.path().filename().string().ends_with(".tmp")) << de.path();
  }
}

}  // namespace
}  // namespace mqdr::backup::test
