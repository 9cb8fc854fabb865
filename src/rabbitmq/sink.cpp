#include "rabbitmq/sink.hpp"

#include <poll.h>
#include <sys/time.h>

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace mqdr::rabbitmq {

namespace {
constexpr amqp_channel_t kPublish = 1;
using Clock = std::chrono::steady_clock;

bool has_header(const Record& r, const std::string& key) {
  return std::any_of(r.headers.begin(), r.headers.end(),
                     [&](const Header& h) { return h.key == key; });
}
const std::string* attr(const Record& r, std::string_view name) {
  for (const auto& a : r.attributes) {
    if (a.first == name) return &a.second;
  }
  return nullptr;
}
}  // namespace

ConfirmSink::ConfirmSink(ClusterConfig cluster, SinkOptions options)
    : options_(std::move(options)),
      conn_(std::move(cluster), fmt::format("mirror {} target", options_.mirror)) {}

ConfirmSink::~ConfirmSink() { close(); }

Status ConfirmSink::open() {
  outstanding_.clear();
  retry_.clear();
  confirmed_.clear();
  next_seq_ = 1;
  parking_declared_ = false;
  Status st = conn_.open(options_.connect_timeout);
  if (!st.is_ok()) return st;
  if (st = conn_.open_channel(kPublish); !st.is_ok()) return st;
  amqp_confirm_select(conn_.state(), kPublish);
  return conn_.check(amqp_get_rpc_reply(conn_.state()), "enabling publisher confirms", kPublish);
}

Status ConfirmSink::ensure_parking() {
  if (parking_declared_) return Status::ok();
  const std::string q = parking_queue();
  amqp_queue_declare(conn_.state(), kPublish, bytes_of(q), 0, /*durable=*/1, 0, 0,
                     amqp_empty_table);
  Status st = conn_.check(amqp_get_rpc_reply(conn_.state()),
                          fmt::format("declaring the parking queue '{}'", q), kPublish);
  if (st.is_ok()) parking_declared_ = true;
  return st;
}

Status ConfirmSink::publish(Pending p) {
  const Record& r = p.record;
  std::vector<std::pair<std::string, std::string>> extra;
  if (!has_header(r, kOriginHeader)) extra.emplace_back(kOriginHeader, options_.origin);
  // RabbitMQ refuses a user_id other than the connection's user (unless it impersonates):
  // keep the original value in a header instead of losing the message.
  bool move_user = false;
  if (const auto* uid = attr(r, "amqp.user_id"); uid && *uid != conn_.cluster().rabbitmq.user) {
    extra.emplace_back("x-mqdr-user-id", *uid);
    move_user = true;
  }
  if (attr(r, kAttrExchange) != nullptr) {
    if (options_.shovel_exchange.empty()) {
      p.exchange.clear();
      p.routing_key = r.item;
    } else {
      p.exchange = options_.shovel_exchange;
      p.routing_key = r.key.value_or("");
    }
  } else {
    p.exchange = r.item;
    p.routing_key = r.key.value_or("");
  }
  if (p.parked) {
    Status st = ensure_parking();
    if (!st.is_ok()) return st;
    extra.emplace_back("x-mqdr-exchange", p.exchange);
    extra.emplace_back("x-mqdr-routing-key", p.routing_key);
    p.exchange.clear();
    p.routing_key = parking_queue();
  }
  amqp_basic_properties_t props;
  record_to_properties(r, props, arena_, extra);
  if (move_user) props._flags &= ~AMQP_BASIC_USER_ID_FLAG;
  static const std::string empty;
  const std::string& body = r.value ? *r.value : empty;
  int rc = amqp_basic_publish(conn_.state(), kPublish, bytes_of(p.exchange),
                              bytes_of(p.routing_key), /*mandatory=*/1, /*immediate=*/0, &props,
                              bytes_of(body));
  arena_.clear();
  if (rc != AMQP_STATUS_OK) return conn_.library_error(rc, "publishing");
  p.returned = false;
  outstanding_.emplace(next_seq_++, std::move(p));
  if (options_.counters) options_.counters->published.fetch_add(1, std::memory_order_relaxed);
  return Status::ok();
}

Status ConfirmSink::write(std::span<const Record> records, std::uint64_t first_id) {
  if (!conn_.is_open()) return Status::retry(fmt::format("{}: not connected", conn_.where()));
  // rabbitmq-c writes every frame with its own send(): corked, a batch leaves in segments of
  // up to 64 KiB instead of one per message, which saves the target broker a receive per message.
  // Uncorked before any wait and at the end, so nothing is held back in the kernel.
  const bool corked = records.size() > 1;
  if (corked) conn_.cork(true);
  Status st = publish_all(records, first_id);
  if (corked) conn_.cork(false);
  wake_armed_ = true;  // the pipeline is reading the source again
  return st;
}

Status ConfirmSink::publish_all(std::span<const Record> records, std::uint64_t first_id) {
  std::uint64_t id = first_id;
  for (const auto& r : records) {
    Pending p;
    p.id = id++;
    p.record = r;
    Status st = publish(std::move(p));
    if (!st.is_ok()) return st;
    // Keep reading confirms so neither side's buffers fill up, and bound what is unconfirmed.
    if (outstanding_.size() % 256 == 0) {
      if (st = pump(Duration(0)); !st.is_ok()) return st;
    }
    if (outstanding_.size() >= options_.max_outstanding) conn_.cork(false);
    while (outstanding_.size() >= options_.max_outstanding) {
      if (st = pump(Duration(100)); !st.is_ok()) return st;
    }
  }
  return Status::ok();
}

ConfirmSink::Ready ConfirmSink::wait_readable(Duration wait) {
  if (wake_->buffered()) return Ready::source;
  pollfd fds[2] = {{conn_.fd(), POLLIN, 0}, {wake_->fd(), POLLIN, 0}};
  const int rc = ::poll(fds, 2, static_cast<int>(wait.count()));
  if (rc == 0) return Ready::none;
  // An interrupted poll counts as the target: the caller's own read then waits out the rest.
  if (rc < 0 || fds[0].revents != 0) return Ready::target;
  return Ready::source;
}

Status ConfirmSink::pump(Duration wait, bool may_wake) {
  if (may_wake && wake_armed_ && wait.count() > 0 && wake_ != nullptr && !conn_.buffered()) {
    // Nothing from the target yet: wait for it or for the source, whichever comes first. Once
    // woken by the source, not again before the next write(): a pipeline that does not read
    // (full) must not turn its waits for confirms into a busy loop.
    const auto until = Clock::now() + wait;
    switch (wait_readable(wait)) {
      case Ready::none:
        return Status::ok();
      case Ready::source:
        wake_armed_ = false;
        return Status::ok();
      case Ready::target:
        break;
    }
    wait = std::max(Duration(1), std::chrono::duration_cast<Duration>(until - Clock::now()));
  }
  bool first = true;
  for (;;) {
    amqp_frame_t frame;
    timeval tv{0, 0};
    if (first) {
      tv.tv_sec = static_cast<time_t>(wait.count() / 1000);
      tv.tv_usec = static_cast<suseconds_t>((wait.count() % 1000) * 1000);
    }
    first = false;
    int rc = amqp_simple_wait_frame_noblock(conn_.state(), &frame, &tv);
    if (rc == AMQP_STATUS_TIMEOUT) return Status::ok();
    if (rc != AMQP_STATUS_OK) return conn_.library_error(rc, "reading confirms");
    Status st = handle(frame);
    if (!st.is_ok()) return st;
    if (!amqp_frames_enqueued(conn_.state()) && !amqp_data_in_buffer(conn_.state())) {
      amqp_maybe_release_buffers(conn_.state());
    }
  }
}

void ConfirmSink::settle(std::uint64_t tag, bool multiple, bool ack) {
  auto end = multiple ? outstanding_.upper_bound(tag) : outstanding_.find(tag);
  auto begin = multiple ? outstanding_.begin() : end;
  if (!multiple) {
    if (end == outstanding_.end()) return;
    end = std::next(end);
  }
  const auto now = Clock::now();
  for (auto it = begin; it != end; ++it) {
    Pending& p = it->second;
    if (ack && !p.returned) {
      if (p.parked && options_.counters) {
        options_.counters->parked.fetch_add(1, std::memory_order_relaxed);
      }
      confirmed_.push_back(p.id);
      continue;
    }
    if (!ack) {
      if (options_.counters) options_.counters->nacked.fetch_add(1, std::memory_order_relaxed);
      p.due = now;
    } else {
      ++p.returns;
      p.due = now + options_.return_retry_delay;
      if (p.returns >= options_.max_returns && !p.parked) {
        p.parked = true;
        spdlog::warn(
            "mirror={} cluster={} message to exchange '{}' routing key '{}' returned {} times "
            "as unroutable: parking it in queue '{}'",
            options_.mirror, conn_.cluster().name, p.exchange, p.routing_key, p.returns,
            parking_queue());
      }
    }
    retry_.push_back(std::move(p));
  }
  outstanding_.erase(begin, end);
}

Status ConfirmSink::handle(const amqp_frame_t& frame) {
  if (frame.frame_type != AMQP_FRAME_METHOD) return Status::ok();
  switch (frame.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
      auto* m = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
      settle(m->delivery_tag, m->multiple != 0, true);
      return Status::ok();
    }
    case AMQP_BASIC_NACK_METHOD: {
      auto* m = static_cast<amqp_basic_nack_t*>(frame.payload.method.decoded);
      spdlog::warn("mirror={} cluster={} target nacked publish {} (multiple={}): publishing again",
                   options_.mirror, conn_.cluster().name, m->delivery_tag, m->multiple);
      settle(m->delivery_tag, m->multiple != 0, false);
      return Status::ok();
    }
    case AMQP_BASIC_RETURN_METHOD: {
      auto* m = static_cast<amqp_basic_return_t*>(frame.payload.method.decoded);
      const std::string exchange = str_of(m->exchange);
      const std::string key = str_of(m->routing_key);
      const int code = m->reply_code;
      amqp_message_t msg;
      amqp_rpc_reply_t rr = amqp_read_message(conn_.state(), frame.channel, &msg, 0);
      if (rr.reply_type != AMQP_RESPONSE_NORMAL) return conn_.check(rr, "reading a return", kPublish);
      const std::string body = str_of(msg.body);
      amqp_destroy_message(&msg);
      if (options_.counters) options_.counters->returned.fetch_add(1, std::memory_order_relaxed);
      // basic.return carries no sequence number; it precedes the ack of its publish, so it
      // belongs to the oldest unsettled publish with the same exchange, key and body (identical
      // messages are interchangeable).
      for (auto& [seq, p] : outstanding_) {
        if (!p.returned && p.exchange == exchange && p.routing_key == key &&
            p.record.value.value_or("") == body) {
          p.returned = true;
          if (p.returns == 0) {
            spdlog::warn(
                "mirror={} cluster={} target returned a message as unroutable ({}): exchange '{}' "
                "routing key '{}'; will retry, then park",
                options_.mirror, conn_.cluster().name, code, exchange, key);
          }
          break;
        }
      }
      return Status::ok();
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
      return conn_.on_server_close(frame, "publishing");
    case AMQP_CONNECTION_BLOCKED_METHOD:
      if (!blocked_) {
        spdlog::warn("mirror={} cluster={} target blocked publishers (memory or disk alarm)",
                     options_.mirror, conn_.cluster().name);
      }
      blocked_ = true;
      return Status::ok();
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
      blocked_ = false;
      spdlog::info("mirror={} cluster={} target unblocked publishers", options_.mirror,
                   conn_.cluster().name);
      return Status::ok();
    default:
      return Status::ok();
  }
}

Status ConfirmSink::publish_due_retries() {
  const auto now = Clock::now();
  // Nacks are due at once, returns after a delay; keep their relative order.
  while (!retry_.empty() && retry_.front().due <= now) {
    Pending p = std::move(retry_.front());
    retry_.pop_front();
    Status st = publish(std::move(p));
    if (!st.is_ok()) return st;
  }
  return Status::ok();
}

Status ConfirmSink::poll(Duration wait, const std::function<void(std::uint64_t id)>& confirmed) {
  if (!conn_.is_open()) return Status::retry(fmt::format("{}: not connected", conn_.where()));
  Status st = publish_due_retries();
  if (!st.is_ok()) return st;
  if (confirmed_.empty()) {
    if (outstanding_.empty() && !retry_.empty()) {
      // Only delayed retries are left: wait for the first to become due, within `wait`.
      auto until = retry_.front().due;
      auto w = std::min<Duration>(wait, std::chrono::duration_cast<Duration>(until - Clock::now()));
      if (w.count() > 0) {
        st = pump(w);
        if (!st.is_ok()) return st;
      }
    } else {
      st = pump(outstanding_.empty() ? Duration(0) : wait, /*may_wake=*/true);
      if (!st.is_ok()) return st;
    }
  } else {
    st = pump(Duration(0));
    if (!st.is_ok()) return st;
  }
  for (auto id : confirmed_) confirmed(id);
  confirmed_.clear();
  return Status::ok();
}

Status ConfirmSink::flush(Duration deadline) {
  const auto until = Clock::now() + deadline;
  while (!outstanding_.empty() || !retry_.empty()) {
    if (!conn_.is_open()) return Status::retry(fmt::format("{}: not connected", conn_.where()));
    const auto now = Clock::now();
    if (now >= until) {
      return Status::retry(fmt::format("{}: {} publishes unconfirmed at the flush deadline",
                                       conn_.where(), outstanding_.size() + retry_.size()));
    }
    Status st = publish_due_retries();
    if (!st.is_ok()) return st;
    st = pump(std::min<Duration>(Duration(100),
                                 std::chrono::duration_cast<Duration>(until - now)));
    if (!st.is_ok()) return st;
  }
  return Status::ok();
}

void ConfirmSink::close() { conn_.close(); }

}  // namespace mqdr::rabbitmq
