#include "rabbitmq/standby.hpp"

#include <sys/time.h>

#include <atomic>
#include <chrono>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace mqdr::rabbitmq {

namespace {
constexpr amqp_channel_t kInspect = 4;
// Trims use a fresh channel number each time: deliveries that were in flight when the previous
// trim channel closed may still sit in rabbitmq-c's frame queue under the old number.
std::atomic<unsigned> trim_channels{0};
amqp_channel_t next_trim_channel() {
  return static_cast<amqp_channel_t>(10 + trim_channels.fetch_add(1) % 1000);
}
using Clock = std::chrono::steady_clock;

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

StandbyTrimmer::StandbyTrimmer(std::string mirror, std::filesystem::path state_dir,
                               std::int64_t margin)
    : mirror_(std::move(mirror)),
      file_(state_dir.empty() ? std::filesystem::path() : state_dir / "standby-depths.json"),
      margin_(margin) {}

nlohmann::json StandbyTrimmer::to_json() const {
  auto j = nlohmann::json::object();
  for (const auto& [q, s] : samples_) {
    j[q] = {{"primary", s.primary},
            {"standby", s.standby},
            {"trimmed", s.trimmed},
            {"sampled_at_ms", s.sampled_at_ms}};
  }
  return j;
}

Status StandbyTrimmer::save() const {
  if (file_.empty()) return Status::ok();
  std::error_code ec;
  std::filesystem::create_directories(file_.parent_path(), ec);
  const auto tmp = file_.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"margin", margin_}, {"queues", to_json()}}.dump(2);
    if (!out) return Status::retry(fmt::format("cannot write {}", tmp));
  }
  std::filesystem::rename(tmp, file_, ec);
  if (ec) return Status::retry(fmt::format("cannot write {}: {}", file_.string(), ec.message()));
  return Status::ok();
}

Status StandbyTrimmer::load() {
  if (file_.empty() || !std::filesystem::exists(file_)) return Status::ok();
  std::ifstream in(file_);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("queues")) {
    return Status::retry(fmt::format("{} is not valid JSON", file_.string()));
  }
  for (const auto& [q, s] : j["queues"].items()) {
    QueueSample qs;
    qs.primary = s.value("primary", std::int64_t{-1});
    qs.standby = s.value("standby", std::int64_t{-1});
    qs.sampled_at_ms = s.value("sampled_at_ms", std::int64_t{0});
    samples_[q] = qs;
  }
  return Status::ok();
}

Status StandbyTrimmer::remove_head(Connection& conn, const std::string& queue,
                                   std::int64_t count, Duration deadline, std::int64_t& removed) {
  removed = 0;
  if (count <= 0) return Status::ok();
  const auto until = Clock::now() + deadline;
  const amqp_channel_t kTrim = next_trim_channel();
  Status st = conn.open_channel(kTrim);
  if (!st.is_ok()) return st;
  // Closing the channel at the end requeues, in order, anything delivered beyond `count`.
  struct Closer {
    Connection& c;
    amqp_channel_t ch;
    ~Closer() {
      if (c.is_open()) amqp_channel_close(c.state(), ch, AMQP_REPLY_SUCCESS);
    }
  } closer{conn, kTrim};
  const auto prefetch = static_cast<std::uint16_t>(std::min<std::int64_t>(count, 1000));
  amqp_basic_qos(conn.state(), kTrim, 0, prefetch, 0);
  if (st = conn.check(amqp_get_rpc_reply(conn.state()), "trim prefetch", kTrim); !st.is_ok()) {
    return st;
  }
  amqp_basic_consume(conn.state(), kTrim, bytes_of(queue), amqp_empty_bytes, 0, 0, 0,
                     amqp_empty_table);
  st = conn.check(amqp_get_rpc_reply(conn.state()), fmt::format("trimming queue '{}'", queue),
                  kTrim);
  if (!st.is_ok()) return st;
  std::uint64_t last_tag = 0;
  std::int64_t unacked = 0;
  while (removed < count) {
    if (Clock::now() >= until) break;
    amqp_maybe_release_buffers(conn.state());
    amqp_envelope_t env;
    timeval tv{1, 0};
    amqp_rpc_reply_t res = amqp_consume_message(conn.state(), &env, &tv, 0);
    if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        res.library_error == AMQP_STATUS_TIMEOUT) {
      // A second without a delivery: either the queue holds fewer messages than expected
      // (consumed meanwhile), or a busy broker is slow to deliver. Only the queue knows.
      std::optional<QueueCounts> left;
      if (st = conn.queue_counts(kInspect, queue, left); !st.is_ok()) return st;
      if (!left || left->messages == 0) break;
      continue;
    }
    if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        res.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      amqp_frame_t frame;
      timeval z{0, 0};
      int rc = amqp_simple_wait_frame_noblock(conn.state(), &frame, &z);
      if (rc != AMQP_STATUS_OK && rc != AMQP_STATUS_TIMEOUT) return conn.library_error(rc, "trim");
      if (rc == AMQP_STATUS_OK && frame.frame_type == AMQP_FRAME_METHOD &&
          (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
           frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        return conn.on_server_close(frame, "trim");
      }
      continue;
    }
    if (res.reply_type != AMQP_RESPONSE_NORMAL) return conn.check(res, "trim", kTrim);
    if (env.channel != kTrim) {
      amqp_destroy_envelope(&env);
      continue;
    }
    last_tag = env.delivery_tag;
    amqp_destroy_envelope(&env);
    ++removed;
    if (++unacked >= 500) {
      amqp_basic_ack(conn.state(), kTrim, last_tag, 1);
      unacked = 0;
    }
  }
  if (unacked > 0) amqp_basic_ack(conn.state(), kTrim, last_tag, 1);
  return Status::ok();
}

Status StandbyTrimmer::run(const std::set<std::string>& queues, Connection* primary_conn,
                           Management* primary_mgmt, Connection& standby_conn, Mode mode,
                           Duration deadline) {
  const auto until = Clock::now() + deadline;
  Status st = standby_conn.open_channel(kInspect);
  if (!st.is_ok()) return st;
  const bool primary_up = primary_conn != nullptr && primary_conn->is_open() &&
                          primary_conn->open_channel(kInspect).is_ok();
  Status result;
  for (const auto& q : queues) {
    // 0. The primary once before: its passive declare is answered ahead of deliveries still in
    //    the queue process's mailbox, so one sample can run behind; the larger of two is used.
    std::optional<QueueCounts> before;
    if (primary_up) {
      st = primary_conn->queue_counts(kInspect, q, before);
      if (!st.is_ok() && primary_conn->reply_code() != kNotFound) result = st;
    }
    // 1. The standby.
    std::optional<QueueCounts> standby;
    st = standby_conn.queue_counts(kInspect, q, standby);
    if (!st.is_ok() && standby_conn.reply_code() != kNotFound) return st;
    if (!standby) continue;  // not on the standby (yet): nothing to trim
    auto& sample = samples_[q];
    sample.standby = standby->messages;
    sample.trimmed = 0;
    if (standby->consumers > 0) {
      // Someone consumes the standby copy (active-active, or already promoted): hands off.
      continue;
    }
    // 2. Then the primary again.
    bool fresh = false;
    if (primary_up && before) {
      std::optional<QueueCounts> primary;
      st = primary_conn->queue_counts(kInspect, q, primary);
      if (!st.is_ok() && primary_conn->reply_code() != kNotFound) {
        result = st;
      } else if (primary) {
        std::int64_t unacked = 0;
        if (primary_mgmt != nullptr && primary_mgmt->configured()) {
          nlohmann::json info;
          if (primary_mgmt
                  ->get(fmt::format("/api/queues/{}/{}", primary_mgmt->vhost(), Management::enc(q)),
                        info)
                  .is_ok()) {
            unacked = info.value("messages_unacknowledged", std::int64_t{0});
          }
        }
        sample.primary =
            static_cast<std::int64_t>(std::max(primary->messages, before->messages)) + unacked;
        sample.sampled_at_ms = unix_ms();
        fresh = true;
      }
    }
    if (mode == Mode::sample || sample.primary < 0) continue;
    if (mode == Mode::trim && !fresh) continue;  // an older primary depth is not safe here
    const std::int64_t keep = sample.primary + margin_;
    const std::int64_t excess = sample.standby - keep;
    if (excess <= 0) continue;
    const auto left = std::chrono::duration_cast<Duration>(until - Clock::now());
    if (left.count() <= 0) {
      result = Status::retry(fmt::format("standby trim of mirror '{}' ran out of time", mirror_));
      break;
    }
    std::int64_t removed = 0;
    st = remove_head(standby_conn, q, excess, left, removed);
    sample.trimmed = removed;
    sample.standby -= removed;
    spdlog::info(
        "mirror={} cluster={} standby queue '{}': removed {} consumed-on-primary messages "
        "(primary depth {}, margin {}, standby now {})",
        mirror_, standby_conn.cluster().name, q, removed, sample.primary, margin_,
        sample.standby);
    if (!st.is_ok()) {
      result = st;
      break;
    }
  }
  if (primary_up && primary_conn->is_open()) {
    amqp_channel_close(primary_conn->state(), kInspect, AMQP_REPLY_SUCCESS);
  }
  if (standby_conn.is_open()) amqp_channel_close(standby_conn.state(), kInspect, AMQP_REPLY_SUCCESS);
  Status saved = save();
  if (!result.is_ok()) return result;
  return saved;
}

}  // namespace mqdr::rabbitmq
