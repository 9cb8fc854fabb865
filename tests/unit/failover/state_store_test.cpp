// Persistence of the failover state: atomic replace, load, damaged files, lock, event log.

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "failover/state_store.hpp"
#include "mqdr/failover_machine.hpp"
#include "tests/unit/failover/test_dir.hpp"

namespace mqdr::failover {
namespace {

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
}

TEST(FailoverStateStore, SaveLoadRoundTripLeavesNoTempFiles) {
  test::TempDir dir;
  StateStore store(dir / "failover");
  EXPECT_FALSE(store.load("east-west").state);
  EXPECT_TRUE(store.load("east-west").error.empty());
  store.save("east-west", {{"epoch", 1}});
  store.save("east-west", {{"epoch", 2}});
  auto loaded = store.load("east-west");
  ASSERT_TRUE(loaded.state) << loaded.error;
  EXPECT_EQ((*loaded.state)["epoch"], 2);
  for (const auto& e : std::filesystem::directory_iterator(dir / "failover")) {
    auto name = e.path().filename().string();
    EXPECT_TRUE(name == "east-west.json" || name == "lock") << name;
  }
  EXPECT_EQ(std::filesystem::status(store.state_file("east-west")).permissions() &
                std::filesystem::perms::others_read,
            std::filesystem::perms::none);
}

TEST(FailoverStateStore, DamagedFilesAreReportedNeverThrown) {
  test::TempDir dir;
  StateStore store(dir / "failover");
  auto file = store.state_file("g");
  std::vector<std::pair<std::string, std::string>> damaged = {
      {"", "is empty"},
      {"{\"version\": 1, \"state\": \"fail", "not valid JSON"},
      {"\x01\x02garbage", "not valid JSON"},
  };
  for (const auto& [content, expect] : damaged) {
    write(file, content);
    LoadedState loaded;
    EXPECT_NO_THROW(loaded = store.load("g"));
    EXPECT_FALSE(loaded.state);
    EXPECT_NE(loaded.error.find(expect), std::string::npos) << loaded.error;
    EXPECT_NE(loaded.error.find(file.string()), std::string::npos) << loaded.error;
  }
  auto moved = store.quarantine("g");
  EXPECT_FALSE(std::filesystem::exists(file));
  EXPECT_TRUE(std::filesystem::exists(moved));
  EXPECT_NE(moved.filename().string().find("g.json.corrupt-"), std::string::npos);
}

TEST(FailoverStateStore, ValidJsonWithWrongShapeIsRejectedByTheMachine) {
  test::TempDir dir;
  StateStore store(dir / "failover");
  write(store.state_file("g"), R"({"version": 1, "state": "failing_over", "epoch": 3})");
  auto loaded = store.load("g");
  ASSERT_TRUE(loaded.state);
  EXPECT_THROW(Machine::from_json(*loaded.state), std::runtime_error);
}

TEST(FailoverStateStore, SecondStoreOnTheSameDirectoryIsRefused) {
  test::TempDir dir;
  StateStore first(dir / "failover");
  try {
    StateStore second(dir / "failover");
    ADD_FAILURE() << "second lock taken";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("locked"), std::string::npos) << e.what();
  }
}

TEST(FailoverStateStore, LockIsReleasedOnDestruction) {
  test::TempDir dir;
  { StateStore first(dir / "failover"); }
  EXPECT_NO_THROW(StateStore again(dir / "failover"));
}

TEST(FailoverStateStore, EventLogAppendsLines) {
  test::TempDir dir;
  StateStore store(dir / "failover");
  store.append_event("g", {{"event", "a"}});
  store.append_event("g", {{"event", "b"}});
  std::istringstream lines(read(store.events_file("g")));
  std::string line;
  std::vector<std::string> events;
  while (std::getline(lines, line)) events.push_back(nlohmann::json::parse(line)["event"]);
  EXPECT_EQ(events, (std::vector<std::string>{"a", "b"}));
}

TEST(FailoverStateStore, AtomicWriteReportsUnwritableDirectory) {
  EXPECT_THROW(write_file_atomic("/proc/mqdr-no-such-dir/file", "x"), std::runtime_error);
}

TEST(FailoverStateStore, FileStemIsSafe) {
  EXPECT_EQ(file_stem("east-west"), "east-west");
  EXPECT_EQ(file_stem("../x/y"), ".._x_y");
  EXPECT_EQ(file_stem(".."), "_..");
}

}  // namespace
}  // namespace mqdr::failover
