#include "failover/state_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace mqdr::failover {

namespace {

std::runtime_error sys_error(const std::string& what, const std::filesystem::path& path) {
  return std::runtime_error(fmt::format("{} {}: {}", what, path.string(), std::strerror(errno)));
}

// Closes a descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void write_all(int fd, const std::string& data, const std::filesystem::path& path) {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw sys_error("cannot write", path);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void fsync_dir(const std::filesystem::path& dir) {
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) throw sys_error("cannot open directory", dir);
  if (::fsync(d.fd) != 0) throw sys_error("cannot fsync directory", dir);
}

}  // namespace

std::string file_stem(const std::string& group) {
  std::string out;
  for (char c : group) {
    bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.';
    out += safe ? c : '_';
  }
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

void write_file_atomic(const std::filesystem::path& path, const std::string& content,
                       unsigned mode) {
  auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  auto tmp = dir / fmt::format(".{}.tmp-{}", path.filename().string(), ::getpid());
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)};
    if (f.fd < 0) throw sys_error("cannot create", tmp);
    try {
      write_all(f.fd, content, tmp);
      if (::fsync(f.fd) != 0) throw sys_error("cannot fsync", tmp);
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto err = sys_error("cannot rename into", path);
    ::unlink(tmp.c_str());
    throw err;
  }
  fsync_dir(dir);
}

StateStore::StateStore(std::filesystem::path dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    throw std::runtime_error(
        fmt::format("cannot create state directory {}: {}", dir_.string(), ec.message()));
  }
  auto lock = dir_ / "lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) throw sys_error("cannot open lock file", lock);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (err == EWOULDBLOCK) {
      throw std::runtime_error(fmt::format(
          "{} is locked: another mqdr process drives these failover groups", lock.string()));
    }
    errno = err;
    throw sys_error("cannot lock", lock);
  }
}

StateStore::~StateStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

std::filesystem::path StateStore::state_file(const std::string& group) const {
  return dir_ / (file_stem(group) + ".json");
}

std::filesystem::path StateStore::events_file(const std::string& group) const {
  return dir_ / (file_stem(group) + ".events.jsonl");
}

void StateStore::save(const std::string& group, const nlohmann::json& state) {
  write_file_atomic(state_file(group), state.dump(2) + "\n", 0600);
}

LoadedState StateStore::load(const std::string& group) const {
  LoadedState out;
  auto path = state_file(group);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (ec) out.error = fmt::format("cannot read {}: {}", path.string(), ec.message());
    return out;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out.error = fmt::format("cannot read {}: {}", path.string(), std::strerror(errno));
    return out;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  auto text = buf.str();
  if (text.empty()) {
    out.error = fmt::format("{} is empty (truncated?)", path.string());
    return out;
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    out.error = fmt::format("{} is not valid JSON ({} bytes; truncated or corrupt)",
                            path.string(), text.size());
    return out;
  }
  out.state = std::move(j);
  return out;
}

std::filesystem::path StateStore::quarantine(const std::string& group) {
  auto from = state_file(group);
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  auto to = dir_ / fmt::format("{}.json.corrupt-{}", file_stem(group), secs);
  if (::rename(from.c_str(), to.c_str()) != 0) throw sys_error("cannot move aside", from);
  fsync_dir(dir_);
  return to;
}

void StateStore::append_event(const std::string& group, const nlohmann::json& entry) {
  auto path = events_file(group);
  Fd f{::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)};
  if (f.fd < 0) throw sys_error("cannot open", path);
  write_all(f.fd, entry.dump() + "\n", path);
  if (::fdatasync(f.fd) != 0) throw sys_error("cannot fsync", path);
}

}  // namespace mqdr::failover
