#pragma once
// The bytes of a backup (SPEC.md "Backups on disk"): CRC32C, SHA-256, the record encoding and
// zstd-compressed segment files. Pure functions and small single-threaded objects; no broker.
//
// A segment file (`.seg.zst`) is one zstd stream (frame checksums on) of entries, each
//   u32 body length (little endian) | u32 CRC32C of the body | body
// and a body is
//   i64 position | i64 timestamp_ms | u8 flags (1 key, 2 value)
//   [u32 len, key] [u32 len, value] u32 n_headers {u32 len, key, u8 has_value, [u32 len, value]}
//   u32 n_attributes {u32 len, name, u32 len, value}
// Item and partition are those of the segment (named by the manifest). With `compression: none`
// the same entries are stored as they are, in a `.seg` file.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mqdr/record.hpp"

namespace mqdr::backup {

// CRC-32C (Castagnoli): the SSE 4.2 instruction when the CPU has it, else a table.
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0);
// The table version alone (for CPUs without SSE 4.2; tests compare both).
std::uint32_t crc32c_table(std::string_view data, std::uint32_t crc = 0);

// Incremental SHA-256 (OpenSSL); hex() finishes it.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  std::string hex();

 private:
  void* ctx_;
};
std::string sha256_hex(std::string_view data);
// SHA-256 of a whole file; nullopt when it cannot be read.
std::optional<std::string> sha256_file(const std::filesystem::path& file);

// Appends the entry (header + body) of one record to `out`.
void encode_record(const Record& r, std::string& out);
// Decodes one body (without the 8-byte entry header). False when malformed.
bool decode_body(std::string_view body, Record& out);

// Writes one segment file: records are encoded, checksummed and compressed as they come.
// finish() flushes, fsyncs and closes; the SHA-256 and size are those of the file's bytes.
class SegmentWriter {
 public:
  // level 0 = no compression (plain entries, `compression: none`).
  SegmentWriter(std::filesystem::path file, int level);
  ~SegmentWriter();
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  void add(const Record& r);  // throws std::runtime_error on I/O failure
  void finish();              // throws std::runtime_error
  std::uint64_t records() const { return records_; }
  std::uint64_t raw_bytes() const { return raw_bytes_; }
  std::uint64_t file_bytes() const { return file_bytes_; }
  const std::string& sha256() const { return sha_hex_; }

 private:
  void write_out(const void* data, std::size_t n);
  void compress(std::string_view in, bool end);

  std::filesystem::path file_;
  std::FILE* fp_ = nullptr;
  void* cctx_ = nullptr;
  Sha256 sha_;
  std::string out_buf_, pending_;
  std::uint64_t records_ = 0, raw_bytes_ = 0, file_bytes_ = 0;
  std::string sha_hex_;
  bool plain_ = false;
};

// Reads one segment file back. next() returns false at the end or on a problem; error() then
// says what (empty at a clean end). Each record is checked against its CRC32C.
class SegmentReader {
 public:
  explicit SegmentReader(std::filesystem::path file);
  ~SegmentReader();
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  bool next(Record& out);
  const std::string& error() const { return error_; }
  std::uint64_t index() const { return index_; }  // records returned so far
  // SHA-256 of every byte read from the file (complete once next() returned false cleanly).
  std::string sha256() { return sha_.hex(); }
  std::uint64_t file_bytes() const { return file_bytes_; }

 private:
  bool fill(std::size_t need);

  std::filesystem::path file_;
  std::FILE* fp_ = nullptr;
  void* dctx_ = nullptr;
  Sha256 sha_;
  std::string in_buf_, out_buf_;
  std::size_t in_pos_ = 0, in_len_ = 0;
  std::string plain_;      // decompressed bytes not consumed yet
  std::size_t plain_pos_ = 0;
  bool eof_ = false;
  bool frame_done_ = true;  // the last decompress call ended a frame
  bool compressed_ = true;  // false for `.seg` files (compression: none)
  std::uint64_t index_ = 0;
  std::uint64_t file_bytes_ = 0;
  std::string error_;
};

}  // namespace mqdr::backup
