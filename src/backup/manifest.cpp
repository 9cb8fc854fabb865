#include "backup/manifest.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "backup/format.hpp"

namespace mqdr::backup {

namespace fs = std::filesystem;
using json = nlohmann::json;

const ItemInfo* Manifest::item(const std::string& n) const {
  for (const auto& i : items) {
    if (i.name == n) return &i;
  }
  return nullptr;
}

namespace {

json body_json(const Manifest& m) {
  json items = json::array();
  for (const auto& it : m.items) {
    json parts = json::array();
    for (const auto& p : it.partitions) {
      json segs = json::array();
      for (const auto& s : p.segments) {
        segs.push_back({{"file", s.file}, {"first", s.first}, {"last", s.last},
                        {"records", s.records}, {"bytes", s.bytes}, {"sha256", s.sha256}});
      }
      parts.push_back({{"partition", p.partition}, {"first", p.first}, {"last", p.last},
                       {"next", p.next}, {"records", p.records}, {"segments", segs}});
    }
    items.push_back({{"name", it.name}, {"partitions", parts}});
  }
  return {{"format", m.format},
          {"name", m.name},
          {"plan", m.plan},
          {"cluster", m.cluster},
          {"kind", m.kind},
          {"type", m.full ? "full" : "incremental"},
          {"parent", m.parent.empty() ? json(nullptr) : json(m.parent)},
          {"started_at", m.started_at},
          {"completed_at", m.completed_at},
          {"topology", m.topology},
          {"positions", m.positions},
          {"items", items},
          {"records", m.records},
          {"raw_bytes", m.raw_bytes},
          {"bytes", m.bytes}};
}

template <class T>
T need(const json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) {
    throw std::runtime_error(fmt::format("{}: '{}' is missing", where, key));
  }
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw std::runtime_error(fmt::format("{}: '{}' has the wrong type", where, key));
  }
}

}  // namespace

json to_json(const Manifest& m) {
  json j = body_json(m);
  j["manifest_sha256"] = sha256_hex(j.dump());
  return j;
}

Manifest manifest_from_json(const json& j) {
  if (!j.is_object()) throw std::runtime_error("not a JSON object");
  const auto sha = need<std::string>(j, "manifest_sha256", "manifest");
  json rest = j;
  rest.erase("manifest_sha256");
  if (sha256_hex(rest.dump()) != sha) {
    throw std::runtime_error("manifest_sha256 does not match the manifest's content (it was altered)");
  }
  Manifest m;
  m.format = need<int>(j, "format", "manifest");
  if (m.format != kFormatVersion) {
    throw std::runtime_error(fmt::format("format {} is not supported (this build reads {})", m.format,
                                         kFormatVersion));
  }
  m.name = need<std::string>(j, "name", "manifest");
  m.plan = need<std::string>(j, "plan", "manifest");
  m.cluster = need<std::string>(j, "cluster", "manifest");
  m.kind = need<std::string>(j, "kind", "manifest");
  m.full = need<std::string>(j, "type", "manifest") == "full";
  if (j.contains("parent") && j["parent"].is_string()) m.parent = j["parent"].get<std::string>();
  m.started_at = need<std::string>(j, "started_at", "manifest");
  m.completed_at = need<std::string>(j, "completed_at", "manifest");
  m.topology = j.value("topology", json::object());
  m.positions = j.value("positions", json::object());
  m.records = need<std::uint64_t>(j, "records", "manifest");
  m.raw_bytes = need<std::uint64_t>(j, "raw_bytes", "manifest");
  m.bytes = need<std::uint64_t>(j, "bytes", "manifest");
  for (const auto& ij : need<json>(j, "items", "manifest")) {
    ItemInfo it;
    it.name = need<std::string>(ij, "name", "item");
    for (const auto& pj : need<json>(ij, "partitions", "item " + it.name)) {
      const std::string where = "item " + it.name;
      PartitionInfo p;
      p.partition = need<std::int32_t>(pj, "partition", where);
      p.first = need<std::int64_t>(pj, "first", where);
      p.last = need<std::int64_t>(pj, "last", where);
      p.next = need<std::int64_t>(pj, "next", where);
      p.records = need<std::uint64_t>(pj, "records", where);
      for (const auto& sj : need<json>(pj, "segments", where)) {
        SegmentInfo s;
        s.file = need<std::string>(sj, "file", where);
        s.first = need<std::int64_t>(sj, "first", where);
        s.last = need<std::int64_t>(sj, "last", where);
        s.records = need<std::uint64_t>(sj, "records", where);
        s.bytes = need<std::uint64_t>(sj, "bytes", where);
        s.sha256 = need<std::string>(sj, "sha256", where);
        if (s.file.find("..") != std::string::npos || (!s.file.empty() && s.file[0] == '/')) {
          throw std::runtime_error(fmt::format("{}: segment path '{}' leaves the backup", where, s.file));
        }
        p.segments.push_back(std::move(s));
      }
      it.partitions.push_back(std::move(p));
    }
    m.items.push_back(std::move(it));
  }
  return m;
}

Manifest read_manifest(const fs::path& backup_dir) {
  const fs::path file = backup_dir / kManifestFile;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot be read", file.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw std::runtime_error(fmt::format("{}: not valid JSON at byte {}", file.string(), e.byte));
  }
  try {
    return manifest_from_json(j);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("{}: {}", file.string(), e.what()));
  }
}

void write_manifest(const fs::path& backup_dir, const Manifest& m) {
  const fs::path tmp = backup_dir / ".manifest.json.tmp";
  const std::string text = to_json(m).dump(2) + "\n";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("{}: {}", tmp.string(), std::strerror(errno)));
  std::size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      throw std::runtime_error(fmt::format("{}: {}", tmp.string(), std::strerror(errno)));
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    throw std::runtime_error(fmt::format("{}: fsync: {}", tmp.string(), std::strerror(errno)));
  }
  ::close(fd);
  fs::rename(tmp, backup_dir / kManifestFile);
}

std::string compact_time(TimePoint t) {
  const std::time_t tt = SysClock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::optional<TimePoint> parse_compact_time(const std::string& s) {
  std::tm tm{};
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  const char* end = ::strptime(s.c_str(), "%Y%m%dT%H%M%SZ", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return SysClock::from_time_t(::timegm(&tm));
}

std::string rfc3339(TimePoint t) {
  const std::time_t tt = SysClock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string backup_name(TimePoint t, bool full) {
  return compact_time(t) + (full ? "-full" : "-incremental");
}

std::string temp_name(const std::string& name) { return "." + name + ".tmp"; }

std::string encode_item(const std::string& item) {
  std::string out;
  for (std::size_t i = 0; i < item.size(); ++i) {
    const auto c = static_cast<unsigned char>(item[i]);
    const bool plain = std::isalnum(c) != 0 || c == '-' || c == '_' || (c == '.' && i > 0);
    if (plain) out.push_back(static_cast<char>(c));
    else out += fmt::format("%{:02X}", c);
  }
  return out.empty() ? "%" : out;
}

std::string segment_path(const std::string& item, std::int32_t partition, std::int64_t first,
                         bool compressed) {
  return fmt::format("{}/{}-{}.seg{}", encode_item(item), partition, first, compressed ? ".zst" : "");
}

namespace {

std::optional<BackupEntry> entry_from_name(const std::string& name) {
  BackupEntry e;
  e.name = name;
  if (name.size() == 16 + 5 && name.ends_with("-full")) e.full = true;
  else if (name.size() == 16 + 12 && name.ends_with("-incremental")) e.full = false;
  else return std::nullopt;
  auto t = parse_compact_time(name.substr(0, 16));
  if (!t) return std::nullopt;
  e.time = *t;
  return e;
}

}  // namespace

std::vector<BackupEntry> list_backups(const fs::path& plan_dir, std::vector<std::string>* broken) {
  std::vector<BackupEntry> out;
  std::error_code ec;
  if (!fs::is_directory(plan_dir, ec)) return out;
  for (const auto& de : fs::directory_iterator(plan_dir, ec)) {
    if (!de.is_directory()) continue;
    const std::string name = de.path().filename().string();
    auto e = entry_from_name(name);
    if (!e) continue;
    try {
      const Manifest m = read_manifest(de.path());
      e->parent = m.parent;
      e->full = m.full;
      out.push_back(*e);
    } catch (const std::runtime_error& err) {
      if (broken != nullptr) broken->push_back(err.what());
    }
  }
  std::sort(out.begin(), out.end(), [](const BackupEntry& a, const BackupEntry& b) {
    return a.time != b.time ? a.time < b.time : a.name < b.name;
  });
  return out;
}

std::vector<std::string> chain_of(const std::vector<BackupEntry>& backups, const std::string& name) {
  std::map<std::string, const BackupEntry*> by_name;
  for (const auto& b : backups) by_name[b.name] = &b;
  std::vector<std::string> chain;
  std::set<std::string> seen;
  std::string cur = name;
  for (;;) {
    auto it = by_name.find(cur);
    if (it == by_name.end()) {
      throw std::runtime_error(chain.empty()
                                   ? fmt::format("backup {} is missing or incomplete", cur)
                                   : fmt::format("backup {} needs its parent {}, which is missing or incomplete",
                                                 chain.back(), cur));
    }
    if (!seen.insert(cur).second) throw std::runtime_error(fmt::format("backup {}: the chain of parents loops", cur));
    chain.push_back(cur);
    if (it->second->full) break;
    if (it->second->parent.empty()) {
      throw std::runtime_error(fmt::format("incremental backup {} names no parent", cur));
    }
    cur = it->second->parent;
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

std::vector<std::string> retention_victims(const std::vector<BackupEntry>& backups, TimePoint now,
                                           std::chrono::milliseconds retention) {
  if (backups.empty()) return {};
  std::map<std::string, const BackupEntry*> by_name;
  for (const auto& b : backups) by_name[b.name] = &b;
  std::set<std::string> keep;
  auto keep_chain = [&](const BackupEntry& b) {
    const BackupEntry* cur = &b;
    std::set<std::string> seen;
    while (cur != nullptr && seen.insert(cur->name).second) {
      keep.insert(cur->name);
      if (cur->full || cur->parent.empty()) break;
      auto it = by_name.find(cur->parent);
      cur = it == by_name.end() ? nullptr : it->second;
    }
  };
  const BackupEntry* newest = &backups.front();
  for (const auto& b : backups) {
    if (b.time >= newest->time) newest = &b;
    if (b.time + retention > now) keep_chain(b);
  }
  keep_chain(*newest);
  std::vector<std::string> out;
  for (const auto& b : backups) {
    if (keep.count(b.name) == 0) out.push_back(b.name);
  }
  return out;
}

ScheduleDecision schedule(const std::vector<BackupEntry>& backups, TimePoint now,
                          std::chrono::milliseconds full_every,
                          std::chrono::milliseconds incremental_every) {
  ScheduleDecision d;
  const BackupEntry* last_full = nullptr;
  const BackupEntry* last = nullptr;
  for (const auto& b : backups) {
    if (b.full && (last_full == nullptr || b.time >= last_full->time)) last_full = &b;
    if (last == nullptr || b.time >= last->time) last = &b;
  }
  if (last_full == nullptr || last_full->time + full_every <= now) {
    d.kind = ScheduleDecision::Kind::full;
    d.next_due = now;
    return d;
  }
  // An incremental must continue the newest full's chain: the last backup is of that chain
  // unless it is older than the full (it cannot be: the full is newer or equal).
  if (last->time + incremental_every <= now) {
    d.kind = ScheduleDecision::Kind::incremental;
    d.next_due = now;
    return d;
  }
  d.next_due = std::min(last_full->time + full_every, last->time + incremental_every);
  return d;
}

}  // namespace mqdr::backup
