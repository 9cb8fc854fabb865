// The engine with fakes of mqdr's own interfaces (a BackupReader over records in memory, a
// RestoreTarget whose sink keeps what it is given): incremental contents, verify naming the place
// of a problem, a stopped backup leaving nothing complete, retention on disk, restore order,
// resume and the checkpoint.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "backup/format.hpp"
#include "backup/manifest.hpp"
#include "mqdr/backup.hpp"

namespace mqdr::backup {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Two items: "alpha" with partitions 0 and 1, "beta" with partition 0; records appended by tests.
class FakeReader : public BackupReader {
 public:
  std::map<std::pair<std::string, std::int32_t>, std::vector<Record>> log;
  std::function<void(std::int64_t)> on_record;  // called before each record is handed out

  void append(const std::string& item, std::int32_t p, int n) {
    auto& v = log[{item, p}];
    for (int i = 0; i < n; ++i) {
      Record r;
      r.item = item;
      r.partition = p;
      r.position = static_cast<std::int64_t>(v.size());
      r.key = item + "-" + std::to_string(r.position);
      r.value = std::string(100, static_cast<char>('a' + p));
      r.timestamp_ms = 1000 + r.position;
      r.headers = {{"h", "x"}};
      v.push_back(r);
    }
  }
  std::vector<PartitionHead> heads() override {
    std::vector<PartitionHead> out;
    for (const auto& [k, v] : log) out.push_back({k.first, k.second, 0, static_cast<std::int64_t>(v.size())});
    return out;
  }
  json topology(const std::vector<std::string>& items) override { return {{"items", items}}; }
  json positions(const std::vector<std::string>&) override { return {{"group", 3}}; }
  std::int64_t read(const PartitionHead& h, std::int64_t from, const std::function<bool(Record&)>& out) override {
    auto& v = log[{h.item, h.partition}];
    for (auto i = from; i < h.end; ++i) {
      if (on_record) on_record(i);
      Record r = v[static_cast<std::size_t>(i)];
      if (!out(r)) return i + 1;
    }
    return h.end;
  }
};

// A sink that confirms everything at once and keeps it.
class KeepingSink : public Sink {
 public:
  explicit KeepingSink(std::vector<Record>* out) : out_(out) {}
  Status open() override { return Status::ok(); }
  Status write(std::span<const Record> records, std::uint64_t first_id) override {
    for (std::size_t i = 0; i < records.size(); ++i) {
      out_->push_back(records[i]);
      ids_.push_back(first_id + i);
    }
    return Status::ok();
  }
  Status poll(Duration, const std::function<void(std::uint64_t)>& confirmed) override {
    for (auto id : ids_) confirmed(id);
    ids_.clear();
    return Status::ok();
  }
  Status flush(Duration) override { return Status::ok(); }
  void close() override {}

 private:
  std::vector<Record>* out_;
  std::vector<std::uint64_t> ids_;
};

class FakeTarget : public RestoreTarget {
 public:
  json topology;
  json positions;
  Renames renames;
  std::vector<Record> written;
  std::map<std::string, std::uint64_t> already;  // "item#partition" -> records already there
  RestoredPositions restored;
  int prepared = 0;

  void apply_topology(const json& t, const Renames& r) override {
    topology = t;
    renames = r;
  }
  json prepare(const std::string&, std::int32_t, const json* saved) override {
    ++prepared;
    return saved != nullptr ? *saved : json{{"base", prepared}};
  }
  Resume resume(const std::string& item, std::int32_t p, const json&) override {
    Resume r;
    r.skip_count = already[item + "#" + std::to_string(p)];
    return r;
  }
  SinkPtr make_sink(const std::string&) override { return std::make_unique<KeepingSink>(&written); }
  void apply_positions(const json& p, const Renames&, const RestoredPositions& rp) override {
    positions = p;
    restored = rp;
  }
};

class Engine : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("mqdr-engine-test-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    plan_.name = "p";
    plan_.cluster = "c";
    plan_.dir = root_;
    cluster_.name = "c";
    cluster_.kind = ClusterKind::kafka;
  }
  void TearDown() override { fs::remove_all(root_); }
  BackupResult backup(bool full = false) { return take_backup(plan_, cluster_, full, reader_, nullptr); }

  fs::path root_;
  BackupPlanConfig plan_;
  ClusterConfig cluster_;
  FakeReader reader_;
};

TEST_F(Engine, IncrementalHoldsOnlyWhatCameAfterItsParent) {
  reader_.append("alpha", 0, 100);
  reader_.append("alpha", 1, 50);
  reader_.append("beta", 0, 10);
  const auto f = backup();
  EXPECT_TRUE(f.full);
  EXPECT_EQ(f.records, 160u);
  reader_.append("alpha", 1, 5);
  reader_.append("beta", 0, 7);
  const auto i = backup();
  EXPECT_FALSE(i.full);
  EXPECT_EQ(i.records, 12u);
  const Manifest m = read_manifest(i.dir);
  EXPECT_EQ(m.parent, f.name);
  EXPECT_EQ(m.positions, (json{{"group", 3}}));
  const ItemInfo* alpha = m.item("alpha");
  ASSERT_NE(alpha, nullptr);
  EXPECT_EQ(alpha->partitions[0].records, 0u);
  EXPECT_EQ(alpha->partitions[1].first, 50);
  EXPECT_EQ(alpha->partitions[1].last, 54);
  EXPECT_EQ(alpha->partitions[1].next, 55);
  const auto full_again = backup(/*full=*/true);
  EXPECT_TRUE(full_again.full);
  EXPECT_EQ(full_again.records, 172u);
  const VerifyReport v = verify_backup(i.dir);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.backups, 2u);
  EXPECT_EQ(v.records, 172u);
}

TEST_F(Engine, VerifyNamesFileItemPartitionAndPosition) {
  reader_.append("alpha", 0, 3000);
  plan_.compression = Compression::none;  // plain segments: a flipped byte hits a known record
  const auto f = backup();
  const fs::path seg = f.dir / "alpha" / "0-0.seg";
  ASSERT_TRUE(fs::exists(seg));
  // The 11th record starts at 10 entries of equal size: flip a byte of its value.
  std::string entry;
  encode_record(reader_.log[{"alpha", 0}][0], entry);
  {
    std::fstream s(seg, std::ios::in | std::ios::out | std::ios::binary);
    s.seekp(static_cast<std::streamoff>(entry.size() * 10 + entry.size() - 20));
    s.put('#');
  }
  const VerifyReport v = verify_backup(f.dir);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find(seg.string() + ": item 'alpha' partition 0: the record after position 9"),
            std::string::npos) << v.problem;
  EXPECT_NE(v.problem.find("CRC32C mismatch"), std::string::npos) << v.problem;
}

TEST_F(Engine, VerifyFindsABrokenChain) {
  reader_.append("alpha", 0, 10);
  const auto f = backup();
  reader_.append("alpha", 0, 10);
  const auto i = backup();
  fs::remove_all(f.dir);
  const VerifyReport v = verify_backup(i.dir);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find(f.name), std::string::npos) << v.problem;
}

TEST_F(Engine, AStoppedBackupLeavesNothingThatLooksComplete) {
  reader_.append("alpha", 0, 1000);
  std::stop_source stop;
  reader_.on_record = [&](std::int64_t pos) {
    if (pos == 500) stop.request_stop();
  };
  EXPECT_THROW(take_backup(plan_, cluster_, false, reader_, nullptr, stop.get_token()), std::runtime_error);
  EXPECT_TRUE(list_backups(root_ / "p").empty());
  for (const auto& de : fs::directory_iterator(root_ / "p")) {
    EXPECT_EQ(de.path().filename().string()[0], '.') << de.path();
  }
  reader_.on_record = nullptr;
  const auto ok = backup();
  EXPECT_EQ(ok.records, 1000u);
}

TEST_F(Engine, RetentionDeletesOnDiskOnlyWhatNoRetainedBackupNeeds) {
  reader_.append("alpha", 0, 5);
  const auto f1 = backup();
  reader_.append("alpha", 0, 5);
  const auto i1 = backup();
  const auto f2 = backup(true);
  plan_.retention = std::chrono::hours(1);
  // Two hours later every backup has expired; the newest (f2) stays.
  const auto now = *parse_compact_time(f2.name.substr(0, 16)) + std::chrono::hours(2);
  const auto deleted = apply_retention(plan_, now);
  // Newest first: the incremental goes before the full it needs.
  EXPECT_EQ(deleted, (std::vector<std::string>{i1.name, f1.name}));
  const auto left = list_backups(root_ / "p");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].name, f2.name);
}

TEST_F(Engine, RestoreReplaysTheChainInOrderAndResumes) {
  reader_.append("alpha", 0, 30);
  reader_.append("alpha", 1, 20);
  backup();
  reader_.append("alpha", 0, 10);
  const auto i = backup();

  FakeTarget t;
  t.already["renamed#0"] = 25;  // an earlier, interrupted run wrote these
  RestoreOptions o;
  o.backup_dir = i.dir;
  o.renames = {{"alpha", "renamed"}};
  o.checkpoint = root_ / "cp.json";
  const RestoreResult r = restore(o, t, nullptr);
  EXPECT_EQ(r.chain.size(), 2u);
  EXPECT_EQ(r.skipped, 25u);
  EXPECT_EQ(r.records, 35u);
  ASSERT_EQ(t.written.size(), 35u);
  for (std::size_t k = 0; k < 15; ++k) {
    EXPECT_EQ(t.written[k].item, "renamed");
    EXPECT_EQ(t.written[k].partition, 0);
    EXPECT_EQ(t.written[k].position, static_cast<std::int64_t>(25 + k));
    EXPECT_TRUE(t.written[k].same_content(reader_.log[{"alpha", 0}][25 + k]));
  }
  EXPECT_EQ(t.written[15].partition, 1);
  EXPECT_EQ(t.topology, (json{{"items", {"alpha"}}}));
  EXPECT_EQ(t.restored.positions.at({"renamed", 0}).size(), 40u);
  // The checkpoint keeps what prepare() returned; a rerun hands it back.
  std::ifstream in(o.checkpoint);
  const json cp = json::parse(in);
  EXPECT_EQ(cp["state"]["renamed#0"], (json{{"base", 1}}));
  FakeTarget again;
  again.already["renamed#0"] = 40;
  again.already["renamed#1"] = 20;
  const RestoreResult r2 = restore(o, again, nullptr);
  EXPECT_EQ(r2.records, 0u);
  EXPECT_EQ(again.restored.state.at({"renamed", 0}), (json{{"base", 1}}));
}

TEST_F(Engine, RestoreRefusesACorruptBackup) {
  reader_.append("alpha", 0, 100);
  const auto f = backup();
  fs::remove(f.dir / "alpha" / "0-0.seg.zst");
  FakeTarget t;
  RestoreOptions o;
  o.backup_dir = f.dir;
  EXPECT_THROW(restore(o, t, nullptr), std::runtime_error);
  EXPECT_TRUE(t.written.empty());
}

}  // namespace
}  // namespace mqdr::backup
