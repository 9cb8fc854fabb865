#include "rabbitmq/capture.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace mqdr::rabbitmq {

namespace {
constexpr amqp_channel_t kSetup = 3;

Status bind_queue(Connection& conn, const std::string& queue, const std::string& exchange,
            const std::string& key) {
  amqp_queue_bind(conn.state(), kSetup, bytes_of(queue), bytes_of(exchange), bytes_of(key),
                  amqp_empty_table);
  return conn.check(amqp_get_rpc_reply(conn.state()),
                    fmt::format("binding capture queue '{}' to exchange '{}' key '{}'", queue,
                                exchange, key),
                    kSetup);
}

Status unbind_queue(Connection& conn, const std::string& queue, const std::string& exchange,
              const std::string& key) {
  amqp_queue_unbind(conn.state(), kSetup, bytes_of(queue), bytes_of(exchange), bytes_of(key),
                    amqp_empty_table);
  return conn.check(amqp_get_rpc_reply(conn.state()),
                    fmt::format("unbinding capture queue '{}' from '{}' key '{}'", queue, exchange,
                                key),
                    kSetup);
}
}  // namespace

std::string capture_queue_name(const std::string& mirror, const std::string& exchange) {
  return fmt::format("mqdr.capture.{}.{}", mirror, exchange);
}

Status release_capture(Connection& conn, Management& mgmt, const MirrorConfig& mirror,
                       nlohmann::json& out) {
  out = nlohmann::json::object();
  for (const auto& exchange : mirror.rabbitmq.exchanges) {
    const std::string queue = capture_queue_name(mirror.name, exchange);
    Status st = conn.open_channel(kSetup);
    if (!st.is_ok()) return st;
    std::optional<QueueCounts> counts;
    st = conn.queue_counts(kSetup, queue, counts);
    if (!st.is_ok() && conn.reply_code() != kNotFound) return st;
    if (!counts) {
      out[queue] = {{"absent", true}};
      continue;
    }
    if (!st.is_ok()) (void)conn.open_channel(kSetup);
    // Detach first, so that nothing more arrives while it is emptied or deleted.
    std::set<std::string> keys = {"", "#"};
    if (mgmt.configured()) {
      nlohmann::json mine;
      if (mgmt.get(fmt::format("/api/bindings/{}/e/{}/q/{}", mgmt.vhost(),
                               Management::enc(exchange), Management::enc(queue)),
                   mine)
              .is_ok() &&
          mine.is_array()) {
        keys.clear();
        for (const auto& b : mine) keys.insert(b.value("routing_key", ""));
      }
    }
    for (const auto& k : keys) {
      if (st = unbind_queue(conn, queue, exchange, k); !st.is_ok()) return st;
    }
    amqp_queue_delete(conn.state(), kSetup, bytes_of(queue), /*if_unused=*/0, /*if_empty=*/1);
    st = conn.check(amqp_get_rpc_reply(conn.state()),
                    fmt::format("deleting capture queue '{}'", queue), kSetup);
    if (st.is_ok()) {
      out[queue] = {{"deleted", true}};
      spdlog::info("mirror={} cluster={} capture queue {} deleted", mirror.name,
                   conn.cluster().name, queue);
      continue;
    }
    if (conn.reply_code() != kPreconditionFailed) return st;
    // Not empty: what it holds was never replicated; it stays (detached) and is reported.
    (void)conn.open_channel(kSetup);
    std::optional<QueueCounts> left;
    (void)conn.queue_counts(kSetup, queue, left);
    const auto n = left ? static_cast<std::int64_t>(left->messages) : -1;
    out[queue] = {{"kept_messages", n}};
    spdlog::warn("mirror={} cluster={} capture queue {} kept, detached from '{}': it holds {} "
                 "messages that were never replicated",
                 mirror.name, conn.cluster().name, queue, exchange, n);
  }
  return Status::ok();
}

Status ensure_capture(Connection& conn, Management& mgmt, const MirrorConfig& mirror,
                      std::vector<CaptureState>& out) {
  out.clear();
  const auto& rc = mirror.rabbitmq;
  Status st = conn.open_channel(kSetup);
  if (!st.is_ok()) return st;
  struct ChannelCloser {
    Connection& c;
    ~ChannelCloser() {
      if (c.is_open()) amqp_channel_close(c.state(), kSetup, AMQP_REPLY_SUCCESS);
    }
  } closer{conn};

  for (const auto& exchange : rc.exchanges) {
    if (exchange.empty()) {
      return Status::fatal(fmt::format(
          "mirror '{}': the default exchange cannot be mirrored (it cannot be bound); mirror "
          "the queues with `queues:` instead",
          mirror.name));
    }
    bool exists = false;
    st = conn.exchange_exists(kSetup, exchange, exists);
    if (!st.is_ok()) return st;
    if (!exists) {
      return Status::retry(fmt::format("{}: exchange '{}' does not exist (mirror '{}')",
                                       conn.where(), exchange, mirror.name));
    }
    CaptureState cs;
    cs.exchange = exchange;
    cs.queue = capture_queue_name(mirror.name, exchange);

    // Declare: durable, bounded, drop-head, single active consumer.
    amqp_table_entry_t args[3];
    args[0].key = amqp_cstring_bytes("x-max-length-bytes");
    args[0].value.kind = AMQP_FIELD_KIND_I64;
    args[0].value.value.i64 = rc.capture_max_length_bytes;
    args[1].key = amqp_cstring_bytes("x-overflow");
    args[1].value.kind = AMQP_FIELD_KIND_UTF8;
    args[1].value.value.bytes = amqp_cstring_bytes("drop-head");
    args[2].key = amqp_cstring_bytes("x-single-active-consumer");
    args[2].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    args[2].value.value.boolean = 1;
    amqp_table_t table{3, args};
    amqp_queue_declare(conn.state(), kSetup, bytes_of(cs.queue), 0, /*durable=*/1, 0, 0, table);
    st = conn.check(amqp_get_rpc_reply(conn.state()),
                    fmt::format("declaring capture queue '{}'", cs.queue), kSetup);
    if (!st.is_ok()) {
      if (conn.reply_code() == kPreconditionFailed) {
        return Status::retry(fmt::format(
            "{}: capture queue '{}' exists with other arguments (was capture_max_length_bytes "
            "changed?): delete the queue once it is empty, or restore the setting ({})",
            conn.where(), cs.queue, st.message()));
      }
      return st;
    }

    if (mgmt.configured()) {
      nlohmann::json ex;
      st = mgmt.get(fmt::format("/api/exchanges/{}/{}", mgmt.vhost(), Management::enc(exchange)),
                    ex);
      if (!st.is_ok()) return st;
      cs.type = ex.value("type", "");
    }

    if (cs.type == "direct") {
      nlohmann::json bindings;
      st = mgmt.get(fmt::format("/api/exchanges/{}/{}/bindings/source", mgmt.vhost(),
                                Management::enc(exchange)),
                    bindings);
      if (!st.is_ok()) return st;
      std::set<std::string> wanted;
      for (const auto& b : bindings) {
        if (b.value("destination", "") == cs.queue) continue;
        wanted.insert(b.value("routing_key", ""));
      }
      nlohmann::json mine;
      st = mgmt.get(fmt::format("/api/bindings/{}/e/{}/q/{}", mgmt.vhost(),
                                Management::enc(exchange), Management::enc(cs.queue)),
                    mine);
      if (!st.is_ok()) return st;
      std::set<std::string> have;
      for (const auto& b : mine) have.insert(b.value("routing_key", ""));
      for (const auto& k : wanted) {
        if (have.count(k) == 0) {
          if (st = bind_queue(conn, cs.queue, exchange, k); !st.is_ok()) return st;
          spdlog::info("mirror={} cluster={} capture of direct exchange '{}' now covers key '{}'",
                       mirror.name, conn.cluster().name, exchange, k);
        }
      }
      for (const auto& k : have) {
        if (wanted.count(k) == 0) {
          if (st = unbind_queue(conn, cs.queue, exchange, k); !st.is_ok()) return st;
        }
      }
      cs.keys.assign(wanted.begin(), wanted.end());
    } else if (cs.type == "fanout") {
      if (st = bind_queue(conn, cs.queue, exchange, ""); !st.is_ok()) return st;
    } else if (cs.type == "topic") {
      if (st = bind_queue(conn, cs.queue, exchange, "#"); !st.is_ok()) return st;
    } else if (cs.type == "headers") {
      // No arguments = x-match all of nothing: matches every message.
      if (st = bind_queue(conn, cs.queue, exchange, ""); !st.is_ok()) return st;
    } else {
      // Type unknown (no management API) or a plugin type: bindings that capture everything
      // for fanout, topic and headers exchanges. Direct exchanges need the management API.
      if (st = bind_queue(conn, cs.queue, exchange, ""); !st.is_ok()) return st;
      if (st = bind_queue(conn, cs.queue, exchange, "#"); !st.is_ok()) return st;
      spdlog::warn(
          "mirror={} cluster={} exchange '{}' type {}: captured with '' and '#' bindings; a "
          "direct exchange needs management_uri so its routing keys can be followed",
          mirror.name, conn.cluster().name, exchange, cs.type.empty() ? "unknown" : cs.type);
    }
    out.push_back(std::move(cs));
  }
  return Status::ok();
}

}  // namespace mqdr::rabbitmq
