#include "backup/format.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <zstd.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include <array>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

namespace mqdr::backup {

namespace {

// Table of the reflected Castagnoli polynomial 0x82F63B78, built once.
const std::array<std::uint32_t, 256>& crc_table() {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

void put_u32(std::string& out, std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xffu);
  out.append(b, 4);
}
void put_i64(std::string& out, std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((u >> (8 * i)) & 0xffu);
  out.append(b, 8);
}
void put_str(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}
std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

// Bounds-checked cursor over a body.
struct Cursor {
  std::string_view s;
  std::size_t pos = 0;
  bool ok = true;
  bool take(std::size_t n, std::string_view& out) {
    if (!ok || s.size() - pos < n) return ok = false;
    out = s.substr(pos, n);
    pos += n;
    return true;
  }
  std::uint32_t u32() {
    std::string_view v;
    return take(4, v) ? get_u32(v.data()) : 0;
  }
  std::int64_t i64() {
    std::string_view v;
    if (!take(8, v)) return 0;
    std::uint64_t u = 0;
    for (int i = 0; i < 8; ++i) u |= static_cast<std::uint64_t>(static_cast<unsigned char>(v[i])) << (8 * i);
    return static_cast<std::int64_t>(u);
  }
  std::uint8_t u8() {
    std::string_view v;
    return take(1, v) ? static_cast<std::uint8_t>(v[0]) : 0;
  }
  std::string str() {
    const std::uint32_t n = u32();
    std::string_view v;
    return take(n, v) ? std::string(v) : std::string();
  }
};

constexpr std::size_t kMaxEntry = 1u << 30;  // a corrupted length must not allocate gigabytes

#if defined(__x86_64__)
// The SSE 4.2 crc32 instruction computes exactly CRC-32C, 8 bytes per step.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(const unsigned char* p, std::size_t n,
                                                             std::uint32_t crc) {
  std::uint64_t c = crc;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

}  // namespace

std::uint32_t crc32c(std::string_view data, std::uint32_t crc) {
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2") != 0;
  if (hw) return ~crc32c_sse42(reinterpret_cast<const unsigned char*>(data.data()), data.size(), ~crc);
#endif
  return crc32c_table(data, crc);
}

std::uint32_t crc32c_table(std::string_view data, std::uint32_t crc) {
  const auto& t = crc_table();
  crc = ~crc;
  for (unsigned char c : data) crc = t[(crc ^ c) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

namespace {
void put_u32_at(std::string& out, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[at + static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xffu);
}
}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256: OpenSSL could not initialise a digest");
  }
}
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::update(std::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}
std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &n);
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
  std::string out;
  for (unsigned int i = 0; i < n; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}
std::string sha256_hex(std::string_view data) {
  Sha256 s;
  s.update(data);
  return s.hex();
}
std::optional<std::string> sha256_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  Sha256 s;
  std::string buf(1 << 16, '\0');
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    s.update(std::string_view(buf.data(), static_cast<std::size_t>(in.gcount())));
  }
  if (in.bad()) return std::nullopt;
  return s.hex();
}

void encode_record(const Record& r, std::string& out) {
  // The body is written in place after an 8-byte header filled in at the end.
  const std::size_t start = out.size();
  out.append(8, '\0');
  std::string& body = out;
  put_i64(body, r.position);
  put_i64(body, r.timestamp_ms);
  body.push_back(static_cast<char>((r.key ? 1 : 0) | (r.value ? 2 : 0)));
  if (r.key) put_str(body, *r.key);
  if (r.value) put_str(body, *r.value);
  put_u32(body, static_cast<std::uint32_t>(r.headers.size()));
  for (const auto& h : r.headers) {
    put_str(body, h.key);
    body.push_back(h.value ? 1 : 0);
    if (h.value) put_str(body, *h.value);
  }
  put_u32(body, static_cast<std::uint32_t>(r.attributes.size()));
  for (const auto& [k, v] : r.attributes) {
    put_str(body, k);
    put_str(body, v);
  }
  const std::size_t len = out.size() - start - 8;
  put_u32_at(out, start, static_cast<std::uint32_t>(len));
  put_u32_at(out, start + 4, crc32c(std::string_view(out).substr(start + 8, len)));
}

bool decode_body(std::string_view body, Record& out) {
  Cursor c{body};
  out.position = c.i64();
  out.timestamp_ms = c.i64();
  const std::uint8_t flags = c.u8();
  if ((flags & ~3u) != 0) return false;
  out.key.reset();
  out.value.reset();
  if ((flags & 1u) != 0) out.key = c.str();
  if ((flags & 2u) != 0) out.value = c.str();
  const std::uint32_t nh = c.u32();
  out.headers.clear();
  for (std::uint32_t i = 0; c.ok && i < nh; ++i) {
    Header h;
    h.key = c.str();
    const std::uint8_t has = c.u8();
    if (has > 1) return false;
    if (has == 1) h.value = c.str();
    out.headers.push_back(std::move(h));
  }
  const std::uint32_t na = c.u32();
  out.attributes.clear();
  for (std::uint32_t i = 0; c.ok && i < na; ++i) {
    std::string k = c.str();
    std::string v = c.str();
    out.attributes.emplace_back(std::move(k), std::move(v));
  }
  return c.ok && c.pos == body.size();
}

SegmentWriter::SegmentWriter(std::filesystem::path file, int level) : file_(std::move(file)) {
  fp_ = std::fopen(file_.c_str(), "wb");
  if (fp_ == nullptr) {
    throw std::runtime_error(fmt::format("{}: cannot create: {}", file_.string(), std::strerror(errno)));
  }
  plain_ = level == 0;
  auto* cctx = ZSTD_createCCtx();
  cctx_ = cctx;
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  out_buf_.resize(ZSTD_CStreamOutSize());
}

SegmentWriter::~SegmentWriter() {
  if (fp_ != nullptr) std::fclose(fp_);
  ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_));
}

void SegmentWriter::write_out(const void* data, std::size_t n) {
  if (n == 0) return;
  if (std::fwrite(data, 1, n, fp_) != n) {
    throw std::runtime_error(fmt::format("{}: write failed: {}", file_.string(), std::strerror(errno)));
  }
  sha_.update(std::string_view(static_cast<const char*>(data), n));
  file_bytes_ += n;
}

void SegmentWriter::compress(std::string_view in, bool end) {
  if (plain_) {
    write_out(in.data(), in.size());
    return;
  }
  auto* cctx = static_cast<ZSTD_CCtx*>(cctx_);
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  for (;;) {
    ZSTD_outBuffer output{out_buf_.data(), out_buf_.size(), 0};
    const std::size_t rc = ZSTD_compressStream2(cctx, &output, &input, end ? ZSTD_e_end : ZSTD_e_continue);
    if (ZSTD_isError(rc) != 0) {
      throw std::runtime_error(fmt::format("{}: zstd: {}", file_.string(), ZSTD_getErrorName(rc)));
    }
    write_out(out_buf_.data(), output.pos);
    if (end ? rc == 0 : input.pos == input.size) break;
  }
}

void SegmentWriter::add(const Record& r) {
  const std::size_t before = pending_.size();
  encode_record(r, pending_);
  raw_bytes_ += pending_.size() - before;
  ++records_;
  if (pending_.size() >= (1u << 17)) {
    compress(pending_, false);
    pending_.clear();
  }
}

void SegmentWriter::finish() {
  if (fp_ == nullptr) return;
  compress(pending_, true);
  pending_.clear();
  if (std::fflush(fp_) != 0 || ::fsync(::fileno(fp_)) != 0) {
    throw std::runtime_error(fmt::format("{}: flush failed: {}", file_.string(), std::strerror(errno)));
  }
  std::fclose(fp_);
  fp_ = nullptr;
  sha_hex_ = sha_.hex();
}

SegmentReader::SegmentReader(std::filesystem::path file) : file_(std::move(file)) {
  fp_ = std::fopen(file_.c_str(), "rb");
  if (fp_ == nullptr) {
    error_ = fmt::format("cannot open: {}", std::strerror(errno));
    eof_ = true;
  }
  compressed_ = file_.extension() == ".zst";
  dctx_ = ZSTD_createDCtx();
  in_buf_.resize(ZSTD_DStreamInSize());
}

SegmentReader::~SegmentReader() {
  if (fp_ != nullptr) std::fclose(fp_);
  ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_));
}

// Makes at least `need` decompressed bytes available; false at the end of the file (or on a
// decompression error, which sets error_).
bool SegmentReader::fill(std::size_t need) {
  auto* dctx = static_cast<ZSTD_DCtx*>(dctx_);
  if (plain_pos_ > 0) {
    plain_.erase(0, plain_pos_);
    plain_pos_ = 0;
  }
  std::string& out = out_buf_;
  if (out.empty()) out.resize(ZSTD_DStreamOutSize());
  while (plain_.size() < need) {
    if (in_pos_ == in_len_) {
      if (eof_ || fp_ == nullptr) return false;
      in_len_ = std::fread(in_buf_.data(), 1, in_buf_.size(), fp_);
      in_pos_ = 0;
      if (in_len_ == 0) {
        eof_ = true;
        if (std::ferror(fp_) != 0) error_ = "read failed";
        else if (!frame_done_) error_ = "truncated (the compressed stream ends early)";
        return false;
      }
      sha_.update(std::string_view(in_buf_.data(), in_len_));
      file_bytes_ += in_len_;
    }
    if (!compressed_) {
      plain_.append(in_buf_.data() + in_pos_, in_len_ - in_pos_);
      in_pos_ = in_len_;
      continue;
    }
    ZSTD_inBuffer input{in_buf_.data(), in_len_, in_pos_};
    ZSTD_outBuffer output{out.data(), out.size(), 0};
    const std::size_t rc = ZSTD_decompressStream(dctx, &output, &input);
    in_pos_ = input.pos;
    if (ZSTD_isError(rc) != 0) {
      error_ = fmt::format("zstd: {}", ZSTD_getErrorName(rc));
      eof_ = true;
      in_pos_ = in_len_ = 0;
      return false;
    }
    frame_done_ = rc == 0;
    plain_.append(out.data(), output.pos);
  }
  return true;
}

bool SegmentReader::next(Record& out) {
  if (!error_.empty()) return false;
  if (plain_.size() - plain_pos_ < 8 && !fill(8)) {
    if (error_.empty() && plain_.size() - plain_pos_ != 0) error_ = "truncated record header";
    return false;
  }
  const std::uint32_t len = get_u32(plain_.data() + plain_pos_);
  const std::uint32_t crc = get_u32(plain_.data() + plain_pos_ + 4);
  if (len > kMaxEntry) {
    error_ = fmt::format("record length {} is not plausible", len);
    return false;
  }
  if (plain_.size() - plain_pos_ < 8 + static_cast<std::size_t>(len) && !fill(8 + len)) {
    if (error_.empty()) error_ = "truncated record";
    return false;
  }
  const std::string_view body(plain_.data() + plain_pos_ + 8, len);
  if (crc32c(body) != crc) {
    error_ = "CRC32C mismatch";
    return false;
  }
  if (!decode_body(body, out)) {
    error_ = "malformed record";
    return false;
  }
  plain_pos_ += 8 + len;
  ++index_;
  return true;
}

}  // namespace mqdr::backup
