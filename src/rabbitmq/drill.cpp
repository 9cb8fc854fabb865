#include "rabbitmq/drill.hpp"

#include <chrono>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "rabbitmq/capture.hpp"
#include "rabbitmq/connection.hpp"

namespace mqdr::rabbitmq {

namespace {
using Clock = std::chrono::steady_clock;
constexpr amqp_channel_t kDrill = 1;

Duration left(Clock::time_point until) {
  return Duration(std::max<std::int64_t>(
      1, std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count()));
}

Status open(Connection& conn, Clock::time_point until) {
  Status st = conn.open(std::min(left(until), Duration(10000)), 0);
  if (st.is_ok()) st = conn.open_channel(kDrill);
  return st;
}

// The exchange and queue of the markers on one side, the queue emptied of earlier drills'.
Status declare_channel(Connection& conn) {
  amqp_exchange_declare(conn.state(), kDrill, bytes_of(kDrillExchange), bytes_of("fanout"), 0, 1, 0,
                        0, amqp_empty_table);
  Status st = conn.check(amqp_get_rpc_reply(conn.state()),
                         fmt::format("declaring exchange '{}'", kDrillExchange), kDrill);
  if (!st.is_ok()) return st;
  amqp_table_entry_t entry;
  entry.key = amqp_cstring_bytes("x-max-length");
  entry.value.kind = AMQP_FIELD_KIND_I64;
  entry.value.value.i64 = 10000;
  amqp_table_t args{1, &entry};
  amqp_queue_declare(conn.state(), kDrill, bytes_of(kDrillQueue), 0, 1, 0, 0, args);
  st = conn.check(amqp_get_rpc_reply(conn.state()), fmt::format("declaring queue '{}'", kDrillQueue),
                  kDrill);
  if (!st.is_ok()) return st;
  amqp_queue_bind(conn.state(), kDrill, bytes_of(kDrillQueue), bytes_of(kDrillExchange),
                  amqp_empty_bytes, amqp_empty_table);
  st = conn.check(amqp_get_rpc_reply(conn.state()),
                  fmt::format("binding queue '{}' to exchange '{}'", kDrillQueue, kDrillExchange), kDrill);
  if (!st.is_ok()) return st;
  amqp_queue_purge(conn.state(), kDrill, bytes_of(kDrillQueue));
  return conn.check(amqp_get_rpc_reply(conn.state()), fmt::format("purging queue '{}'", kDrillQueue),
                    kDrill);
}

// Takes up to `max` messages from the drill queue, acknowledging each; calls fn(marker text).
Status take(Connection& conn, int max, Clock::time_point until,
            const std::function<void(const std::string&)>& fn, int& taken) {
  taken = 0;
  while (taken < max) {
    if (Clock::now() >= until) return Status::retry("reading queue " + std::string(kDrillQueue) + " took too long");
    amqp_rpc_reply_t r = amqp_basic_get(conn.state(), kDrill, bytes_of(kDrillQueue), 0);
    Status st = conn.check(r, fmt::format("basic.get from '{}'", kDrillQueue), kDrill);
    if (!st.is_ok()) return st;
    if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) break;  // get-empty
    const auto tag = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded)->delivery_tag;
    amqp_message_t msg;
    r = amqp_read_message(conn.state(), kDrill, &msg, 0);
    st = conn.check(r, fmt::format("reading a message of '{}'", kDrillQueue), kDrill);
    if (!st.is_ok()) return st;
    fn(str_of(msg.body));
    amqp_destroy_message(&msg);
    if (int rc = amqp_basic_ack(conn.state(), kDrill, tag, 0); rc != AMQP_STATUS_OK) {
      return conn.library_error(rc, "acknowledging a drill marker");
    }
    ++taken;
  }
  // Acks are asynchronous: a synchronous call on the same channel is answered after them.
  std::optional<QueueCounts> counts;
  return conn.queue_counts(kDrill, kDrillQueue, counts);
}
}  // namespace

std::vector<std::string> trimmed_exchanges(const std::vector<std::string>& mirrored) {
  std::vector<std::string> out = mirrored;
  if (!out.empty()) out.emplace_back(kDrillExchange);  // markers ride with the first exchange
  return out;
}

Status drill_prepare(const MirrorContext& ctx, Duration deadline) {
  const auto until = Clock::now() + deadline;
  const auto& exchanges = ctx.mirror.rabbitmq.exchanges;
  if (exchanges.empty()) {
    return Status::fatal(fmt::format("mirror {} mirrors no exchange; drill markers travel in the "
                                     "capture queue of its first exchange",
                                     ctx.mirror.name));
  }
  Connection target(ctx.target, fmt::format("mirror {} drill", ctx.mirror.name));
  Status st = open(target, until);
  if (st.is_ok()) st = declare_channel(target);
  if (!st.is_ok()) return st;
  Connection source(ctx.source, fmt::format("mirror {} drill", ctx.mirror.name));
  st = open(source, until);
  if (st.is_ok()) st = declare_channel(source);
  if (!st.is_ok()) return st;
  // The running mirror declares its capture queues; markers join the first one.
  const std::string capture = capture_queue_name(ctx.mirror.name, exchanges.front());
  for (;;) {
    std::optional<QueueCounts> counts;
    st = source.queue_counts(kDrill, capture, counts);
    if (!st.is_ok() && source.reply_code() != kNotFound) return st;
    if (counts) break;
    if (Clock::now() >= until) {
      return Status::retry(fmt::format("capture queue '{}' of mirror {} is not on {} (is the mirror running?)",
                                       capture, ctx.mirror.name, ctx.source.name));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  amqp_queue_bind(source.state(), kDrill, bytes_of(capture), bytes_of(kDrillExchange), amqp_empty_bytes,
                  amqp_empty_table);
  return source.check(amqp_get_rpc_reply(source.state()),
                      fmt::format("binding capture queue '{}' to exchange '{}'", capture, kDrillExchange),
                      kDrill);
}

Status drill_write(const MirrorContext& ctx, DrillMarkers& markers, int count, int consume,
                   Duration deadline) {
  const auto until = Clock::now() + deadline;
  Connection source(ctx.source, fmt::format("mirror {} drill", ctx.mirror.name));
  Status st = open(source, until);
  if (!st.is_ok()) return st;
  // A transaction: commit-ok comes once the broker took every marker (persisted, routed).
  amqp_tx_select(source.state(), kDrill);
  st = source.check(amqp_get_rpc_reply(source.state()), "tx.select", kDrill);
  if (!st.is_ok()) return st;
  for (int n = 0; n < count; ++n) {
    const std::string text = drill_marker(markers.id, n);
    amqp_basic_properties_t props;
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.delivery_mode = 2;
    props.message_id = bytes_of(text);
    props.content_type = amqp_cstring_bytes("text/plain");
    if (int rc = amqp_basic_publish(source.state(), kDrill, bytes_of(kDrillExchange), amqp_cstring_bytes("drill"),
                                    0, 0, &props, bytes_of(text));
        rc != AMQP_STATUS_OK) {
      return source.library_error(rc, "publishing a drill marker");
    }
  }
  amqp_tx_commit(source.state(), kDrill);
  st = source.check(amqp_get_rpc_reply(source.state()), "tx.commit of the drill markers", kDrill);
  if (!st.is_ok()) return st;
  markers.written = count;
  markers.detail = {{"exchange", kDrillExchange}, {"queue", kDrillQueue},
                    {"capture_queue", capture_queue_name(ctx.mirror.name, ctx.mirror.rabbitmq.exchanges.front())}};
  // Leave the transaction mode: a fresh channel for the consumer.
  Connection consumer(ctx.source, fmt::format("mirror {} drill consumer", ctx.mirror.name));
  st = open(consumer, until);
  if (!st.is_ok()) return st;
  int expected = 0, out_of_order = 0, taken = 0;
  st = take(consumer, std::min(consume, count), until, [&](const std::string& body) {
    auto n = parse_drill_marker(body, markers.id);
    if (!n || *n != expected) ++out_of_order;
    ++expected;
  }, taken);
  if (!st.is_ok()) return st;
  markers.consumed = taken;
  if (out_of_order != 0 || taken != std::min(consume, count)) {
    return Status::fatal(fmt::format("the drill consumer on {} got {} of the first {} markers, {} "
                                     "not in order",
                                     ctx.source.name, taken, std::min(consume, count), out_of_order));
  }
  return Status::ok();
}

Status drill_check(const MirrorContext& ctx, const DrillMarkers& markers, DrillCheck& out,
                   Duration deadline) {
  const auto until = Clock::now() + deadline;
  Connection target(ctx.target, fmt::format("mirror {} drill consumer", ctx.mirror.name));
  Status st = open(target, until);
  if (!st.is_ok()) return st;
  std::map<int, int> got;
  int taken = 0;
  // The consumer resumes on the target: whatever its queue holds now.
  st = take(target, 1 << 30, until, [&](const std::string& body) {
    if (auto n = parse_drill_marker(body, markers.id)) ++got[*n];
  }, taken);
  if (!st.is_ok()) return st;
  out.on_target = static_cast<int>(got.size());
  out.detail["taken_from_queue"] = taken;
  count_resume(markers, [&](int n) { return got.count(n) != 0; }, out);
  // A consumed marker missing here is the standby trim doing its job; an unconsumed one is lost.
  out.lost = out.resume_missing;
  out.detail["note"] = "consumed markers are not expected on the standby (acks are not "
                       "replicated; the promotion trim removes what exceeds the primary's depth "
                       "plus standby_margin)";
  return Status::ok();
}

}  // namespace mqdr::rabbitmq
