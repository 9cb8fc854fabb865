// Record encoding, CRC32C, SHA-256 and segment files, without brokers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "backup/format.hpp"
#include "backup/progress.hpp"

namespace mqdr::backup {
namespace {

namespace fs = std::filesystem;

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4
  // Incremental computation equals one pass.
  EXPECT_EQ(crc32c("6789", crc32c("12345")), crc32c("123456789"));
}

TEST(Crc32c, HardwareAndTableAgree) {
  EXPECT_EQ(crc32c_table("123456789"), 0xE3069283u);
  std::string data;
  for (int i = 0; i < 5000; ++i) data.push_back(static_cast<char>((i * 7919) & 0xff));
  for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 63u, 4999u}) {
    EXPECT_EQ(crc32c(std::string_view(data).substr(0, n)), crc32c_table(std::string_view(data).substr(0, n))) << n;
    EXPECT_EQ(crc32c(std::string_view(data).substr(n), 0x12345678u),
              crc32c_table(std::string_view(data).substr(n), 0x12345678u)) << n;
  }
}

TEST(Sha256, KnownVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Record sample(std::int64_t pos) {
  Record r;
  r.position = pos;
  r.timestamp_ms = 1700000000123 + pos;
  r.key = pos % 3 == 0 ? std::nullopt : std::optional<std::string>("key" + std::to_string(pos));
  r.value = pos % 5 == 0 ? std::nullopt : std::optional<std::string>(std::string(static_cast<std::size_t>(pos % 300), 'v'));
  r.headers = {{"a", "1"}, {"a", std::nullopt}, {"", ""}};
  r.attributes = {{"amqp.message_id", "m"}, {"bin", std::string("\0\1\2", 3)}};
  return r;
}

TEST(RecordEncoding, RoundTripsEveryField) {
  for (std::int64_t pos : {0, 1, 3, 5, 15, 299}) {
    const Record r = sample(pos);
    std::string entry;
    encode_record(r, entry);
    Record back;
    ASSERT_TRUE(decode_body(std::string_view(entry).substr(8), back));
    EXPECT_EQ(back.position, r.position);
    EXPECT_TRUE(back.same_content(r)) << pos;
  }
}

TEST(RecordEncoding, RejectsTruncatedBodies) {
  std::string entry;
  encode_record(sample(7), entry);
  const std::string_view body = std::string_view(entry).substr(8);
  Record back;
  for (std::size_t n = 0; n < body.size(); ++n) EXPECT_FALSE(decode_body(body.substr(0, n), back)) << n;
}

class SegmentFiles : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mqdr-seg-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(int n) {
    const fs::path f = dir_ / (GetParam() == 0 ? "s.seg" : "s.seg.zst");
    SegmentWriter w(f, GetParam());
    for (int i = 0; i < n; ++i) w.add(sample(i));
    w.finish();
    EXPECT_EQ(w.records(), static_cast<std::uint64_t>(n));
    EXPECT_EQ(w.file_bytes(), fs::file_size(f));
    EXPECT_EQ(w.sha256(), *sha256_file(f));
    return f;
  }
  fs::path dir_;
};

TEST_P(SegmentFiles, RoundTrip) {
  const fs::path f = write(5000);
  SegmentReader r(f);
  Record rec;
  std::int64_t i = 0;
  while (r.next(rec)) {
    ASSERT_EQ(rec.position, i);
    ASSERT_TRUE(rec.same_content(sample(i)));
    ++i;
  }
  EXPECT_EQ(r.error(), "");
  EXPECT_EQ(i, 5000);
  EXPECT_EQ(r.sha256(), *sha256_file(f));
}

TEST_P(SegmentFiles, FlippedByteIsFound) {
  const fs::path f = write(2000);
  const auto size = fs::file_size(f);
  {
    std::fstream s(f, std::ios::in | std::ios::out | std::ios::binary);
    s.seekp(static_cast<std::streamoff>(size / 2));
    s.put('\x7f');
  }
  SegmentReader r(f);
  Record rec;
  std::uint64_t n = 0;
  while (r.next(rec)) ++n;
  // A CRC32C (plain) or the zstd frame checksum (compressed) catches it.
  EXPECT_FALSE(r.error().empty()) << "records read: " << n;
}

TEST_P(SegmentFiles, TruncationIsFound) {
  const fs::path f = write(2000);
  fs::resize_file(f, fs::file_size(f) - 3);
  SegmentReader r(f);
  Record rec;
  while (r.next(rec)) {
  }
  EXPECT_NE(r.error(), "");
}

INSTANTIATE_TEST_SUITE_P(PlainAndZstd, SegmentFiles, ::testing::Values(0, 3));

TEST(ProgressBar, LineShowsPercentRateAndEta) {
  const std::string l = ProgressBar::line("backup p", 500, 1000, 5000000, 10);
  EXPECT_NE(l.find(" 50%"), std::string::npos) << l;
  EXPECT_NE(l.find("500/1000 records"), std::string::npos) << l;
  EXPECT_NE(l.find("50 rec/s"), std::string::npos) << l;
  EXPECT_NE(l.find("0.5 MB/s"), std::string::npos) << l;
  EXPECT_NE(l.find("ETA 0:10"), std::string::npos) << l;
  EXPECT_EQ(ProgressBar::line("x", 7, 0, 0, 0).find('%'), std::string::npos);
  EXPECT_NE(ProgressBar::line("x", 7, 7, 100, 0.000001).find(" 0 rec/s"), std::string::npos)
      << "no rate from a too short time";
}

}  // namespace
}  // namespace mqdr::backup
