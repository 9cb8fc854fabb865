// The broker-neutral part of backups: taking one (reader -> segment files -> manifest, renamed
// into place only when complete), retention, verification and restore (segment files -> the
// pipeline -> a target's sink, resumable through a checkpoint).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "backup/format.hpp"
#include "backup/manifest.hpp"
#include "mqdr/backup.hpp"
#include "mqdr/pipeline.hpp"

namespace mqdr::backup {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kSegmentRawBytes = 64u << 20;  // a new segment file after this much data
constexpr int kZstdLevel = 3;

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// An exclusive lock on a plan directory: one backup or retention pass at a time, across
// processes (the daemon's scheduler and `mqdr backup`).
class PlanLock {
 public:
  explicit PlanLock(const fs::path& plan_dir) {
    const fs::path file = plan_dir / ".lock";
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(fmt::format("{}: {}", file.string(), std::strerror(errno)));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw std::runtime_error(
          fmt::format("{}: another backup of this plan is running", plan_dir.string()));
    }
  }
  ~PlanLock() { ::close(fd_); }
  PlanLock(const PlanLock&) = delete;
  PlanLock& operator=(const PlanLock&) = delete;

 private:
  int fd_ = -1;
};

// Removes the temporary directories of runs that died (only while holding the plan lock).
void remove_stale_temps(const fs::path& plan_dir) {
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(plan_dir, ec)) {
    const std::string n = de.path().filename().string();
    if (de.is_directory() && n.size() > 5 && n[0] == '.' && n.ends_with(".tmp")) {
      spdlog::info("backup: removing {} left by an interrupted run", de.path().string());
      fs::remove_all(de.path(), ec);
    }
  }
}

struct Stopped : std::runtime_error {
  Stopped() : std::runtime_error("stopped before it completed") {}
};

std::string where(const fs::path& file, const std::string& item, std::int32_t partition) {
  return fmt::format("{}: item '{}' partition {}", file.string(), item, partition);
}

}  // namespace

BackupResult take_backup(const BackupPlanConfig& plan, const ClusterConfig& cluster, bool full,
                         BackupReader& reader, Progress* progress, std::stop_token stop) {
  const auto t0 = Clock::now();
  const bool compressed = plan.compression == Compression::zstd;
  const fs::path plan_dir = plan.dir / plan.name;
  fs::create_directories(plan_dir);
  PlanLock lock(plan_dir);
  remove_stale_temps(plan_dir);

  const auto backups = list_backups(plan_dir);
  std::optional<Manifest> parent;
  if (!full && !backups.empty()) {
    parent = read_manifest(plan_dir / backups.back().name);
    if (parent->kind != to_string(cluster.kind)) parent.reset();
  }
  full = !parent.has_value();

  auto now = SysClock::now();
  std::string name = backup_name(now, full);
  // Names order the backups: never two in one second (a clock set back is not waited for).
  while (fs::exists(plan_dir / name) ||
         (!backups.empty() && name.substr(0, 16) == backups.back().name.substr(0, 16))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    now = SysClock::now();
    name = backup_name(now, full);
  }
  const fs::path tmp = plan_dir / temp_name(name);
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  Manifest m;
  m.name = name;
  m.plan = plan.name;
  m.cluster = cluster.name;
  m.kind = to_string(cluster.kind);
  m.full = full;
  if (parent) m.parent = parent->name;
  m.started_at = rfc3339(now);

  try {
    const auto heads = reader.heads();
    std::vector<std::string> items;
    for (const auto& h : heads) {
      if (items.empty() || items.back() != h.item) items.push_back(h.item);
    }
    m.topology = reader.topology(items);
    m.positions = reader.positions(items);

    // Where each partition starts: after the parent's positions (positional kinds).
    auto start_of = [&](const PartitionHead& h) {
      std::int64_t from = h.first;
      if (parent && reader.positional()) {
        if (const ItemInfo* pi = parent->item(h.item)) {
          for (const auto& pp : pi->partitions) {
            if (pp.partition == h.partition) from = std::max(from, pp.next);
          }
        }
      }
      return from;
    };
    if (progress != nullptr) {
      std::uint64_t total = 0;
      for (const auto& h : heads) total += static_cast<std::uint64_t>(std::max<std::int64_t>(0, h.end - start_of(h)));
      progress->total_records = total;
    }

    for (const auto& h : heads) {
      if (stop.stop_requested()) throw Stopped();
      const std::int64_t from = start_of(h);
      PartitionInfo p;
      p.partition = h.partition;
      p.next = from;
      std::unique_ptr<SegmentWriter> seg;
      SegmentInfo si;
      auto close_segment = [&] {
        if (!seg) return;
        seg->finish();
        si.records = seg->records();
        si.bytes = seg->file_bytes();
        si.sha256 = seg->sha256();
        m.raw_bytes += seg->raw_bytes();
        m.bytes += seg->file_bytes();
        p.segments.push_back(si);
        seg.reset();
      };
      const std::int64_t next = reader.read(h, from, [&](Record& r) {
        if (stop.stop_requested()) return false;
        if (!seg) {
          si = SegmentInfo{};
          si.file = segment_path(h.item, h.partition, r.position, compressed);
          si.first = r.position;
          fs::create_directories((tmp / si.file).parent_path());
          seg = std::make_unique<SegmentWriter>(tmp / si.file, compressed ? kZstdLevel : 0);
        }
        seg->add(r);
        si.last = r.position;
        if (p.first < 0) p.first = r.position;
        p.last = r.position;
        ++p.records;
        ++m.records;
        if (progress != nullptr) {
          progress->records.fetch_add(1, std::memory_order_relaxed);
          progress->bytes.fetch_add(r.size_bytes(), std::memory_order_relaxed);
        }
        if (seg->raw_bytes() >= kSegmentRawBytes) close_segment();
        return true;
      });
      if (stop.stop_requested()) throw Stopped();
      close_segment();
      p.next = std::max(next, from);
      ItemInfo* it = m.items.empty() || m.items.back().name != h.item ? nullptr : &m.items.back();
      if (it == nullptr) {
        m.items.push_back(ItemInfo{h.item, {}});
        it = &m.items.back();
      }
      it->partitions.push_back(std::move(p));
    }
    m.completed_at = rfc3339(SysClock::now());
    write_manifest(tmp, m);
    for (const auto& it : m.items) fsync_dir(tmp / encode_item(it.name));
    fsync_dir(tmp);
    fs::rename(tmp, plan_dir / name);
    fsync_dir(plan_dir);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  BackupResult r;
  r.name = name;
  r.dir = plan_dir / name;
  r.full = full;
  r.records = m.records;
  r.raw_bytes = m.raw_bytes;
  r.bytes = m.bytes;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

std::vector<std::string> apply_retention(const BackupPlanConfig& plan, SysClock::time_point now) {
  const fs::path plan_dir = plan.dir / plan.name;
  if (!fs::is_directory(plan_dir)) return {};
  PlanLock lock(plan_dir);
  remove_stale_temps(plan_dir);
  auto victims = retention_victims(list_backups(plan_dir), now, plan.retention);
  // Newest first (names start with their UTC time): a child goes before its parent, so at every
  // moment (and after a crash halfway) each remaining backup still has its whole chain.
  std::sort(victims.begin(), victims.end(), std::greater<>());
  for (const auto& v : victims) {
    // Renamed away first, so a crash halfway never leaves a backup that looks complete.
    const fs::path gone = plan_dir / temp_name(v + ".deleting");
    fs::rename(plan_dir / v, gone);
    fs::remove_all(gone);
    spdlog::info("backup plan={}: deleted {} (older than the retention)", plan.name, v);
  }
  if (!victims.empty()) fsync_dir(plan_dir);
  return victims;
}

namespace {

// Checks one backup's files against its manifest; the first problem ends the check.
bool verify_one(const fs::path& dir, const Manifest& m, const Manifest* parent, VerifyReport& rep,
                Progress* progress) {
  auto fail = [&](std::string what) {
    rep.ok = false;
    rep.problem = std::move(what);
    return false;
  };
  if (dir.filename().string() != m.name) {
    return fail(fmt::format("{}: names backup '{}' but lies in '{}'", (dir / kManifestFile).string(),
                            m.name, dir.filename().string()));
  }
  if (!m.full) {
    if (parent == nullptr) return fail(fmt::format("{}: parent missing", m.name));
    if (parent->plan != m.plan || parent->kind != m.kind) {
      return fail(fmt::format("{}: parent {} belongs to another plan or kind", (dir / kManifestFile).string(),
                              parent->name));
    }
  }
  std::uint64_t total = 0;
  for (const auto& it : m.items) {
    for (const auto& p : it.partitions) {
      // An incremental holds only what came after its parent's positions.
      if (parent != nullptr && m.kind != "rabbitmq" && p.records > 0) {
        if (const ItemInfo* pi = parent->item(it.name)) {
          for (const auto& pp : pi->partitions) {
            if (pp.partition == p.partition && p.first < pp.next) {
              return fail(fmt::format("{}: position {}: overlaps its parent {} (which ends before {})",
                                      where(dir / kManifestFile, it.name, p.partition), p.first,
                                      parent->name, pp.next));
            }
          }
        }
      }
      std::uint64_t precs = 0;
      std::int64_t prev = -1;
      bool any = false;
      for (const auto& s : p.segments) {
        const fs::path file = dir / s.file;
        const std::string at = where(file, it.name, p.partition);
        std::error_code ec;
        if (!fs::exists(file, ec)) {
          return fail(fmt::format("{}: position {}: segment file is missing ({} records)", at, s.first,
                                  s.records));
        }
        SegmentReader rd(file);
        Record r;
        std::int64_t last = -1;
        while (rd.next(r)) {
          if ((any && r.position <= prev) || (rd.index() == 1 && r.position != s.first)) {
            return fail(fmt::format("{}: position {}: out of order (record {} of the segment)", at,
                                    r.position, rd.index()));
          }
          prev = last = r.position;
          any = true;
          if (progress != nullptr) {
            progress->records.fetch_add(1, std::memory_order_relaxed);
            progress->bytes.fetch_add(r.size_bytes(), std::memory_order_relaxed);
          }
        }
        if (!rd.error().empty()) {
          const std::string pos = rd.index() == 0
                                      ? fmt::format("position {} (the segment's first record)", s.first)
                                      : fmt::format("the record after position {} (record {} of the segment)",
                                                    last, rd.index() + 1);
          return fail(fmt::format("{}: {}: {}", at, pos, rd.error()));
        }
        const std::string sha = rd.sha256();
        if (sha != s.sha256 || rd.file_bytes() != s.bytes) {
          return fail(fmt::format("{}: position {}: SHA-256 of the segment does not match the manifest "
                                  "({} bytes, manifest says {})",
                                  at, s.first, rd.file_bytes(), s.bytes));
        }
        if (rd.index() != s.records || last != s.last) {
          return fail(fmt::format("{}: position {}: holds {} records up to position {}, manifest says {} up to {}",
                                  at, s.first, rd.index(), last, s.records, s.last));
        }
        precs += rd.index();
        ++rep.segments;
      }
      if (precs != p.records) {
        return fail(fmt::format("{}: position {}: {} records in segments, manifest says {}",
                                where(dir / kManifestFile, it.name, p.partition), p.first, precs,
                                p.records));
      }
      total += precs;
    }
  }
  if (total != m.records) {
    return fail(fmt::format("{}: {} records in items, manifest says {}", (dir / kManifestFile).string(),
                            total, m.records));
  }
  rep.records += total;
  ++rep.backups;
  return true;
}

}  // namespace

VerifyReport verify_backup(const fs::path& backup_dir, Progress* progress) {
  VerifyReport rep;
  if (!fs::is_directory(backup_dir)) {
    throw std::runtime_error(fmt::format("{}: no such backup directory", backup_dir.string()));
  }
  // The chain, newest first, following parents among the siblings.
  std::vector<std::pair<fs::path, Manifest>> chain;
  fs::path cur = backup_dir;
  std::set<std::string> seen;
  for (;;) {
    Manifest m;
    try {
      m = read_manifest(cur);
    } catch (const std::runtime_error& e) {
      rep.ok = false;
      rep.problem = chain.empty() ? e.what()
                                  : fmt::format("{} (parent of {})", e.what(), chain.back().second.name);
      return rep;
    }
    const bool full = m.full;
    const std::string parent = m.parent;
    chain.emplace_back(cur, std::move(m));
    if (full) break;
    if (parent.empty() || !seen.insert(parent).second) {
      rep.ok = false;
      rep.problem = fmt::format("{}: incremental without a usable parent", (cur / kManifestFile).string());
      return rep;
    }
    cur = cur.parent_path() / parent;
  }
  std::reverse(chain.begin(), chain.end());
  if (progress != nullptr) {
    std::uint64_t total = 0;
    for (const auto& [d, m] : chain) total += m.records;
    progress->total_records = total;
  }
  for (std::size_t i = 0; i < chain.size(); ++i) {
    const Manifest* parent = i == 0 ? nullptr : &chain[i - 1].second;
    if (!verify_one(chain[i].first, chain[i].second, parent, rep, progress)) return rep;
  }
  return rep;
}

namespace {

// The records of a backup chain in restore order (partition after partition, within one the
// backups oldest first), skipping what the target already holds. A Source for the pipeline;
// commit() is where the pipeline says the target confirmed a prefix.
class ChainSource : public Source {
 public:
  struct Part {
    std::string item;         // original name
    std::string target_item;  // renamed
    std::int32_t partition = 0;
    std::vector<fs::path> files;  // in order
    Resume resume;
  };

  ChainSource(std::vector<Part> parts, RestoredPositions* restored, Progress* progress)
      : parts_(std::move(parts)), restored_(restored), progress_(progress) {}

  Status open() override { return Status::ok(); }

  Status read(Batch& out, std::size_t max, Duration) override {
    while (out.size() < max && part_ < parts_.size()) {
      Part& p = parts_[part_];
      if (!reader_) {
        if (file_ >= p.files.size()) {
          ++part_;
          file_ = 0;
          index_ = 0;
          continue;
        }
        reader_ = std::make_unique<SegmentReader>(p.files[file_]);
      }
      Record r;
      if (!reader_->next(r)) {
        if (!reader_->error().empty()) {
          return Status::fatal(fmt::format("{}: {}", p.files[file_].string(), reader_->error()));
        }
        reader_.reset();
        ++file_;
        continue;
      }
      const std::uint64_t idx = index_++;
      auto& positions = restored_->positions[{p.target_item, p.partition}];
      positions.push_back(r.position);
      if (idx < p.resume.skip_count || r.position <= p.resume.skip_through) {
        ++skipped_;
        if (progress_ != nullptr) progress_->records.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      r.item = p.target_item;
      r.partition = p.partition;
      out.push_back(std::move(r));
    }
    return Status::ok();
  }

  Status commit(std::span<const Record> confirmed) override {
    if (progress_ != nullptr) {
      std::uint64_t bytes = 0;
      for (const auto& r : confirmed) bytes += r.size_bytes();
      progress_->records.fetch_add(confirmed.size(), std::memory_order_relaxed);
      progress_->bytes.fetch_add(bytes, std::memory_order_relaxed);
    }
    written_ += confirmed.size();
    return Status::ok();
  }
  void close() override { reader_.reset(); }

  std::uint64_t written() const { return written_; }
  std::uint64_t skipped() const { return skipped_; }

 private:
  std::vector<Part> parts_;
  RestoredPositions* restored_;
  Progress* progress_;
  std::size_t part_ = 0, file_ = 0;
  std::uint64_t index_ = 0;
  std::unique_ptr<SegmentReader> reader_;
  std::uint64_t written_ = 0, skipped_ = 0;
};

std::string part_key(const std::string& item, std::int32_t partition) {
  return fmt::format("{}#{}", item, partition);
}

void save_json(const fs::path& file, const json& j) {
  fs::create_directories(file.parent_path());
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    out.flush();
    if (!out) throw std::runtime_error(fmt::format("{}: cannot be written", tmp.string()));
  }
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  fs::rename(tmp, file);
  fsync_dir(file.parent_path());
}

}  // namespace

RestoreResult restore(const RestoreOptions& options, RestoreTarget& target, Progress* progress,
                      std::stop_token stop) {
  const auto t0 = Clock::now();
  fs::path dir = options.backup_dir;
  if (dir.filename().empty()) dir = dir.parent_path();  // a trailing '/'
  const VerifyReport rep = verify_backup(dir);
  if (!rep.ok) throw std::runtime_error("the backup failed verification: " + rep.problem);

  // The chain, oldest first.
  std::vector<Manifest> chain;
  for (fs::path cur = dir;;) {
    chain.push_back(read_manifest(cur));
    if (chain.back().full) break;
    cur = cur.parent_path() / chain.back().parent;
  }
  std::reverse(chain.begin(), chain.end());
  const Manifest& newest = chain.back();
  const fs::path plan_dir = dir.parent_path();
  // RabbitMQ queue contents are a state, not a log: only the newest backup's records.
  const std::size_t first_with_records = newest.kind == "rabbitmq" ? chain.size() - 1 : 0;

  RestoreResult result;
  for (const auto& m : chain) result.chain.push_back(m.name);

  target.apply_topology(newest.topology, options.renames);

  // Parts in a stable order: item, partition, then the backups' segment files in chain order.
  std::map<std::pair<std::string, std::int32_t>, ChainSource::Part> parts;
  std::uint64_t total = 0;
  for (std::size_t i = first_with_records; i < chain.size(); ++i) {
    for (const auto& it : chain[i].items) {
      for (const auto& p : it.partitions) {
        auto& part = parts[{it.name, p.partition}];
        part.item = it.name;
        part.target_item = renamed(options.renames, it.name);
        part.partition = p.partition;
        for (const auto& s : p.segments) part.files.push_back(plan_dir / chain[i].name / s.file);
        total += p.records;
      }
    }
  }
  if (progress != nullptr) progress->total_records = total;

  // The checkpoint remembers each target partition's state from before the first write.
  json cp = json::object();
  if (!options.checkpoint.empty() && fs::exists(options.checkpoint)) {
    std::ifstream in(options.checkpoint);
    cp = json::parse(in, nullptr, false);
    if (cp.is_discarded() || !cp.is_object()) {
      throw std::runtime_error(fmt::format("{}: not valid JSON; remove it to restore from scratch "
                                           "(what was restored already would then be duplicated)",
                                           options.checkpoint.string()));
    }
    if (cp.value("backup", "") != newest.name || cp.value("plan", "") != newest.plan) {
      throw std::runtime_error(fmt::format("{}: belongs to a restore of {}/{}, not {}/{}",
                                           options.checkpoint.string(), cp.value("plan", ""),
                                           cp.value("backup", ""), newest.plan, newest.name));
    }
  }
  cp["plan"] = newest.plan;
  cp["backup"] = newest.name;
  if (!cp.contains("state")) cp["state"] = json::object();
  RestoredPositions restored;
  std::vector<ChainSource::Part> ordered;
  for (auto& [key, part] : parts) {
    const std::string k = part_key(part.target_item, part.partition);
    const json* saved = cp["state"].contains(k) ? &cp["state"][k] : nullptr;
    json state = target.prepare(part.target_item, part.partition, saved);
    cp["state"][k] = state;
    restored.state[{part.target_item, part.partition}] = state;
  }
  if (!options.checkpoint.empty()) save_json(options.checkpoint, cp);
  for (auto& [key, part] : parts) {
    part.resume = target.resume(part.target_item, part.partition,
                                restored.state[{part.target_item, part.partition}]);
    ordered.push_back(std::move(part));
  }

  ChainSource source(std::move(ordered), &restored, progress);
  SinkPtr sink = target.make_sink(newest.cluster);
  Status st = sink->open();
  if (!st.is_ok()) throw std::runtime_error("restore target: " + st.message());
  PipelineOptions po;
  po.stop_when_idle = true;
  po.read_wait = Duration(0);
  po.drain_timeout = std::chrono::seconds(60);
  Pipeline pipeline(source, *sink, po, nullptr);
  st = pipeline.run(stop);
  sink->close();
  if (!st.is_ok()) throw std::runtime_error("restore: " + st.message());
  if (stop.stop_requested()) throw std::runtime_error("restore: stopped before it completed");
  if (pipeline.inflight() != 0) throw std::runtime_error("restore: the target did not confirm every record");

  target.apply_positions(newest.positions, options.renames, restored);
  cp["completed_at"] = rfc3339(SysClock::now());
  if (!options.checkpoint.empty()) save_json(options.checkpoint, cp);
  result.records = source.written();
  result.skipped = source.skipped();
  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return result;
}

}  // namespace mqdr::backup
