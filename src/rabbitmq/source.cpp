#include "rabbitmq/source.hpp"

#include <sys/time.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "rabbitmq/codec.hpp"
#include "rabbitmq/drill.hpp"

namespace mqdr::rabbitmq {

namespace {
constexpr amqp_channel_t kConsume = 1;
constexpr amqp_channel_t kMeta = 2;
}  // namespace

AmqpSource::AmqpSource(ClusterConfig cluster, SourceOptions options)
    : options_(std::move(options)),
      conn_(std::move(cluster), fmt::format("mirror {} source", options_.mirror)) {}

AmqpSource::~AmqpSource() { close(); }

Status AmqpSource::open() {
  ++epoch_;
  spec_by_tag_.clear();
  read_count_ = acked_count_ = 0;
  Status st = conn_.open(options_.connect_timeout);
  if (!st.is_ok()) return st;
  if (st = conn_.open_channel(kConsume); !st.is_ok()) return st;
  if (st = conn_.open_channel(kMeta); !st.is_ok()) return st;
  amqp_basic_qos(conn_.state(), kConsume, 0, static_cast<std::uint16_t>(options_.prefetch), 0);
  if (st = conn_.check(amqp_get_rpc_reply(conn_.state()), "setting the prefetch", kConsume);
      !st.is_ok()) {
    return st;
  }
  for (const auto& q : options_.queues) {
    const std::string tag = fmt::format("mqdr.{}.{}", options_.mirror, q.queue);
    auto* ok = amqp_basic_consume(conn_.state(), kConsume, bytes_of(q.queue), bytes_of(tag),
                                  /*no_local=*/0, /*no_ack=*/0, /*exclusive=*/0, amqp_empty_table);
    st = conn_.check(amqp_get_rpc_reply(conn_.state()), fmt::format("consuming queue '{}'", q.queue),
                     kConsume);
    if (!st.is_ok()) {
      if (conn_.reply_code() == kNotFound) {
        return Status::retry(fmt::format("{}: queue '{}' does not exist", conn_.where(), q.queue));
      }
      return st;
    }
    spec_by_tag_[str_of(ok->consumer_tag)] = &q;
  }
  spdlog::info("mirror={} cluster={} consuming {} queue(s), prefetch {}", options_.mirror,
               conn_.cluster().name, options_.queues.size(), options_.prefetch);
  return Status::ok();
}

Status AmqpSource::handle_other_frame() {
  amqp_frame_t frame;
  timeval tv{0, 0};
  int rc = amqp_simple_wait_frame_noblock(conn_.state(), &frame, &tv);
  if (rc == AMQP_STATUS_TIMEOUT) return Status::ok();
  if (rc != AMQP_STATUS_OK) return conn_.library_error(rc, "reading from the source");
  if (frame.frame_type != AMQP_FRAME_METHOD) return Status::ok();
  switch (frame.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
      return conn_.on_server_close(frame, "consuming");
    case AMQP_BASIC_CANCEL_METHOD: {
      auto* m = static_cast<amqp_basic_cancel_t*>(frame.payload.method.decoded);
      auto it = spec_by_tag_.find(str_of(m->consumer_tag));
      return Status::retry(fmt::format("{}: the broker cancelled consumer '{}' ({}): queue deleted?",
                                       conn_.where(), str_of(m->consumer_tag),
                                       it == spec_by_tag_.end() ? "?" : it->second->queue));
    }
    default:
      return Status::ok();
  }
}

Status AmqpSource::read(Batch& out, std::size_t max, Duration wait) {
  if (!conn_.is_open()) return Status::retry(fmt::format("{}: not connected", conn_.where()));
  bool first = true;
  while (out.size() < max) {
    amqp_maybe_release_buffers(conn_.state());
    timeval tv{0, 0};
    if (first) {
      tv.tv_sec = static_cast<time_t>(wait.count() / 1000);
      tv.tv_usec = static_cast<suseconds_t>((wait.count() % 1000) * 1000);
    }
    first = false;
    amqp_envelope_t env;
    amqp_rpc_reply_t res = amqp_consume_message(conn_.state(), &env, &tv, 0);
    if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
      if (res.library_error == AMQP_STATUS_TIMEOUT) break;
      if (res.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        Status st = handle_other_frame();
        if (!st.is_ok()) return st;
        continue;
      }
      return conn_.library_error(res.library_error, "consuming");
    }
    if (res.reply_type != AMQP_RESPONSE_NORMAL) {
      return conn_.check(res, "consuming", kConsume);
    }
    ++read_count_;
    const auto& props = env.message.properties;
    if (!options_.skip_origin.empty()) {
      auto origin = find_string_header(props, kOriginHeader);
      if (origin && *origin == options_.skip_origin) {
        // Came from the target originally: acknowledging it alone is safe (never acked again).
        amqp_basic_ack(conn_.state(), kConsume, env.delivery_tag, 0);
        ++skipped_;
        ++acked_count_;
        amqp_destroy_envelope(&env);
        continue;
      }
    }
    Record r;
    auto it = spec_by_tag_.find(str_of(env.consumer_tag));
    const ConsumeSpec* spec = it != spec_by_tag_.end() ? it->second : nullptr;
    r.item = spec != nullptr ? spec->item : str_of(env.exchange);
    // Drill markers are bound into a capture queue from their own exchange and go back to it.
    if (spec != nullptr && !spec->shovel && str_of(env.exchange) == kDrillExchange) r.item = kDrillExchange;
    r.position = static_cast<std::int64_t>(env.delivery_tag);
    r.key = str_of(env.routing_key);
    r.value = str_of(env.message.body);
    properties_to_record(props, r);
    if (spec != nullptr && spec->shovel) {
      r.attributes.emplace_back(kAttrExchange, str_of(env.exchange));
    }
    r.source_token = epoch_;
    out.push_back(std::move(r));
    amqp_destroy_envelope(&env);
  }
  return Status::ok();
}

Status AmqpSource::commit(std::span<const Record> confirmed) {
  const Record* last = nullptr;
  std::uint64_t n = 0;
  for (const auto& r : confirmed) {
    if (r.source_token == epoch_) {
      last = &r;
      ++n;
    }
  }
  if (last == nullptr) return Status::ok();  // read on an earlier connection: redelivered anyway
  if (!conn_.is_open()) return Status::retry(fmt::format("{}: not connected", conn_.where()));
  int rc = amqp_basic_ack(conn_.state(), kConsume, static_cast<std::uint64_t>(last->position), 1);
  if (rc != AMQP_STATUS_OK) return conn_.library_error(rc, "acknowledging");
  acked_count_ += n;
  return Status::ok();
}

Lag AmqpSource::lag() {
  Lag lag;
  if (!conn_.is_open()) return lag;
  std::int64_t ready = 0;
  for (const auto& q : options_.queues) {
    std::optional<QueueCounts> counts;
    Status st = conn_.queue_counts(kMeta, q.queue, counts);
    if (!st.is_ok() || !counts) return lag;
    ready += counts->messages;
  }
  const auto now = std::chrono::steady_clock::now();
  const std::int64_t unacked = static_cast<std::int64_t>(read_count_ - acked_count_);
  lag.records = ready + unacked;
  if (lag.records > 0) {
    if (!backlog_) backlog_since_ = now;
    backlog_ = true;
    // Every message still waiting arrived after the backlog was last seen empty: an upper bound.
    lag.seconds = std::chrono::duration<double>(now - backlog_since_).count();
  } else {
    backlog_ = false;
    lag.seconds = 0;
  }
  return lag;
}

void AmqpSource::close() { conn_.close(); }

}  // namespace mqdr::rabbitmq
