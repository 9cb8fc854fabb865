// RabbitMQ backups: the definitions of the selected exchanges and queues (with their arguments),
// the bindings between them and the vhost's policies, read through the management API; and the
// messages of the selected queues with all their properties, read without removing or reordering
// them: a consumer on a channel of its own takes the queue's current depth without acking, then
// the channel is closed and the broker puts every message back at its place (they come back
// marked redelivered). Queue contents are a state, not a log: each backup holds them whole and a
// restore replays the newest backup's. Restores declare the definitions (renamed), publish with
// publisher confirms to the queues by name (rabbitmq::ConfirmSink), and resume from the queue
// depth they remembered before their first publish (the restore checkpoint).
#include <amqp.h>

#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "backup/kinds.hpp"
#include "rabbitmq/codec.hpp"
#include "rabbitmq/connection.hpp"
#include "rabbitmq/management.hpp"
#include "rabbitmq/sink.hpp"

namespace mqdr::backup {

namespace {

using json = nlohmann::json;
using namespace mqdr::rabbitmq;
using Clock = std::chrono::steady_clock;
constexpr Duration kTimeout{std::chrono::seconds(15)};
constexpr amqp_channel_t kInspect = 1;

void ok_or_throw(const Status& st) {
  if (!st.is_ok()) throw std::runtime_error(st.message());
}

json args_of(const json& o) { return o.value("arguments", json::object()); }

class RabbitReader : public BackupReader {
 public:
  RabbitReader(const BackupPlanConfig& plan, const ClusterConfig& cluster)
      : plan_(plan), cluster_(cluster), conn_(cluster, "backup " + plan.name), mgmt_(cluster, kTimeout) {
    ok_or_throw(conn_.open(kTimeout));
    ok_or_throw(conn_.open_channel(kInspect));
  }

  bool positional() const override { return false; }

  std::vector<PartitionHead> heads() override {
    std::vector<PartitionHead> out;
    std::set<std::string> queues(plan_.queues.begin(), plan_.queues.end());
    for (const auto& q : queues) {
      std::optional<QueueCounts> counts;
      ok_or_throw(conn_.queue_counts(kInspect, q, counts));
      if (!counts) throw std::runtime_error(fmt::format("queue '{}' does not exist on {}", q, conn_.where()));
      out.push_back(PartitionHead{q, 0, 1, static_cast<std::int64_t>(counts->messages) + 1});
    }
    return out;
  }

  json topology(const std::vector<std::string>&) override {
    if (!mgmt_.configured()) {
      throw std::runtime_error(fmt::format("cluster {} has no management_uri: definitions cannot be read",
                                           cluster_.name));
    }
    const std::string v = mgmt_.vhost();
    json ex, qs, bs, ps;
    ok_or_throw(mgmt_.get("/api/exchanges/" + v, ex));
    ok_or_throw(mgmt_.get("/api/queues/" + v, qs));
    ok_or_throw(mgmt_.get("/api/bindings/" + v, bs));
    ok_or_throw(mgmt_.get("/api/policies/" + v, ps));
    const std::set<std::string> exchanges(plan_.exchanges.begin(), plan_.exchanges.end());
    const std::set<std::string> queues(plan_.queues.begin(), plan_.queues.end());
    json out = {{"exchanges", json::array()}, {"queues", json::array()}, {"bindings", json::array()},
                {"policies", json::array()}};
    std::set<std::string> found_ex, found_q;
    for (const auto& e : ex) {
      const std::string n = e.value("name", "");
      if (exchanges.count(n) == 0) continue;
      found_ex.insert(n);
      out["exchanges"].push_back({{"name", n}, {"type", e.value("type", "direct")},
                                  {"durable", e.value("durable", true)}, {"auto_delete", e.value("auto_delete", false)},
                                  {"internal", e.value("internal", false)}, {"arguments", args_of(e)}});
    }
    for (const auto& q : qs) {
      const std::string n = q.value("name", "");
      if (queues.count(n) == 0) continue;
      found_q.insert(n);
      out["queues"].push_back({{"name", n}, {"durable", q.value("durable", true)},
                               {"auto_delete", q.value("auto_delete", false)}, {"arguments", args_of(q)}});
    }
    for (const auto& e : exchanges) {
      if (found_ex.count(e) == 0) throw std::runtime_error(fmt::format("exchange '{}' does not exist on {}", e, cluster_.name));
    }
    for (const auto& b : bs) {
      const std::string src = b.value("source", "");
      const std::string dst = b.value("destination", "");
      const bool to_queue = b.value("destination_type", "") == "queue";
      if (src.empty()) continue;  // the default exchange's implicit bindings
      const bool wanted = found_ex.count(src) != 0 && ((to_queue && found_q.count(dst) != 0) ||
                                                         (!to_queue && found_ex.count(dst) != 0));
      if (!wanted) continue;
      out["bindings"].push_back({{"source", src}, {"destination", dst},
                                 {"destination_type", to_queue ? "queue" : "exchange"},
                                 {"routing_key", b.value("routing_key", "")}, {"arguments", args_of(b)}});
    }
    for (const auto& p : ps) {
      out["policies"].push_back({{"name", p.value("name", "")}, {"pattern", p.value("pattern", "")},
                                 {"definition", p.value("definition", json::object())},
                                 {"priority", p.value("priority", 0)}, {"apply-to", p.value("apply-to", "all")}});
    }
    return out;
  }

  json positions(const std::vector<std::string>&) override { return json::object(); }

  std::int64_t read(const PartitionHead& h, std::int64_t from,
                    const std::function<bool(Record&)>& out) override {
    const std::int64_t want = h.end - 1;  // messages in the queue when heads() looked
    if (want <= 0 || from >= h.end) return h.end;
    // A channel of its own per queue: deliveries still in flight when it closes are kept by
    // rabbitmq-c under its number and must not show up in the next queue's read.
    const amqp_channel_t ch = next_channel_++;
    ok_or_throw(conn_.open_channel(ch));
    // Closing the channel returns every delivery to its place in the queue, in order.
    struct Closer {
      Connection& c;
      amqp_channel_t ch;
      ~Closer() {
        if (c.is_open()) amqp_channel_close(c.state(), ch, AMQP_REPLY_SUCCESS);
      }
    } closer{conn_, ch};
    amqp_basic_qos(conn_.state(), ch, 0, 0, 0);
    ok_or_throw(conn_.check(amqp_get_rpc_reply(conn_.state()), "backup prefetch", ch));
    amqp_basic_consume(conn_.state(), ch, bytes_of(h.item), amqp_empty_bytes, 0, /*no_ack=*/0,
                       /*exclusive=*/0, amqp_empty_table);
    ok_or_throw(conn_.check(amqp_get_rpc_reply(conn_.state()), fmt::format("reading queue '{}'", h.item), ch));
    std::int64_t n = 0;
    auto last = Clock::now();
    while (n < want) {
      amqp_maybe_release_buffers(conn_.state());
      amqp_envelope_t env;
      timeval tv{1, 0};
      const amqp_rpc_reply_t res = amqp_consume_message(conn_.state(), &env, &tv, 0);
      if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && res.library_error == AMQP_STATUS_TIMEOUT) {
        // Fewer than the depth: another consumer took some meanwhile.
        if (Clock::now() - last > std::chrono::seconds(5)) break;
        continue;
      }
      if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && res.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        amqp_frame_t frame;
        timeval z{0, 0};
        const int rc = amqp_simple_wait_frame_noblock(conn_.state(), &frame, &z);
        if (rc != AMQP_STATUS_OK && rc != AMQP_STATUS_TIMEOUT) ok_or_throw(conn_.library_error(rc, "backup read"));
        if (rc == AMQP_STATUS_OK && frame.frame_type == AMQP_FRAME_METHOD &&
            (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
             frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
          ok_or_throw(conn_.on_server_close(frame, "backup read"));
        }
        continue;
      }
      if (res.reply_type != AMQP_RESPONSE_NORMAL) ok_or_throw(conn_.check(res, "backup read", ch));
      if (env.channel != ch) {
        amqp_destroy_envelope(&env);
        continue;
      }
      last = Clock::now();
      Record r;
      r.item = h.item;
      r.position = ++n;
      r.key = str_of(env.routing_key);
      r.value = str_of(env.message.body);
      properties_to_record(env.message.properties, r);
      // Restores publish it straight to the queue (ConfirmSink: an amqp.exchange attribute).
      r.attributes.emplace_back(kAttrExchange, str_of(env.exchange));
      amqp_destroy_envelope(&env);
      if (!out(r)) break;
    }
    return h.end;
  }

 private:
  BackupPlanConfig plan_;
  ClusterConfig cluster_;
  Connection conn_;
  Management mgmt_;
  amqp_channel_t next_channel_ = 10;
};

class RabbitTarget : public RestoreTarget {
 public:
  explicit RabbitTarget(const ClusterConfig& cluster)
      : cluster_(cluster), conn_(cluster, "restore"), mgmt_(cluster, kTimeout) {
    ok_or_throw(conn_.open(kTimeout));
    ok_or_throw(conn_.open_channel(kInspect));
  }

  void apply_topology(const json& topology, const Renames& renames) override {
    if (!mgmt_.configured()) {
      throw std::runtime_error(fmt::format("cluster {} has no management_uri: definitions cannot be restored",
                                           cluster_.name));
    }
    const std::string v = mgmt_.vhost();
    auto put = [&](const std::string& path, const json& body, const std::string& what) {
      Status st = mgmt_.put(path, body);
      if (!st.is_ok()) throw std::runtime_error(fmt::format("{} on {}: {}", what, cluster_.name, st.message()));
    };
    for (const auto& e : topology.value("exchanges", json::array())) {
      const std::string n = renamed(renames, e.value("name", ""));
      put(fmt::format("/api/exchanges/{}/{}", v, Management::enc(n)),
          {{"type", e.value("type", "direct")}, {"durable", e.value("durable", true)},
           {"auto_delete", e.value("auto_delete", false)}, {"internal", e.value("internal", false)},
           {"arguments", args_of(e)}},
          "exchange '" + n + "'");
    }
    for (const auto& q : topology.value("queues", json::array())) {
      const std::string n = renamed(renames, q.value("name", ""));
      put(fmt::format("/api/queues/{}/{}", v, Management::enc(n)),
          {{"durable", q.value("durable", true)}, {"auto_delete", q.value("auto_delete", false)},
           {"arguments", args_of(q)}},
          "queue '" + n + "'");
    }
    for (const auto& b : topology.value("bindings", json::array())) {
      const std::string src = renamed(renames, b.value("source", ""));
      const std::string dst = renamed(renames, b.value("destination", ""));
      const char* kind = b.value("destination_type", "") == "exchange" ? "e" : "q";
      // Bindings are a set: posting an existing one again changes nothing.
      Status st = mgmt_.post(fmt::format("/api/bindings/{}/e/{}/{}/{}", v, Management::enc(src), kind,
                                         Management::enc(dst)),
                             {{"routing_key", b.value("routing_key", "")}, {"arguments", args_of(b)}});
      if (!st.is_ok()) throw std::runtime_error(fmt::format("binding {} -> {}: {}", src, dst, st.message()));
    }
    for (const auto& p : topology.value("policies", json::array())) {
      const std::string n = p.value("name", "");
      put(fmt::format("/api/policies/{}/{}", v, Management::enc(n)),
          {{"pattern", p.value("pattern", "")}, {"definition", p.value("definition", json::object())},
           {"priority", p.value("priority", 0)}, {"apply-to", p.value("apply-to", "all")}},
          "policy '" + n + "'");
    }
  }

  json prepare(const std::string& item, std::int32_t, const json* saved) override {
    if (saved != nullptr && saved->contains("base")) return *saved;
    return {{"base", depth(item)}};
  }

  // Exact while nothing consumes from the queue during the restore (docs/backups.md).
  // A restore killed mid-way may still have publishes on their way into the queue (in its
  // socket's send buffer when it died, or in the broker's channel process): wait until the depth
  // holds still before counting what is already there, or those would be published twice.
  Resume resume(const std::string& item, std::int32_t, const json& state) override {
    std::int64_t now = depth(item);
    for (int i = 0; i < 20; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      const std::int64_t again = depth(item);
      if (again == now) break;
      now = again;
    }
    Resume r;
    r.skip_count = static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - state.value("base", std::int64_t{0})));
    return r;
  }

  SinkPtr make_sink(const std::string& origin) override {
    SinkOptions o;
    o.mirror = "restore";
    o.origin = origin;
    o.shovel_exchange = "";
    return std::make_unique<ConfirmSink>(cluster_, o);
  }

  void apply_positions(const json&, const Renames&, const RestoredPositions&) override {}

 private:
  std::int64_t depth(const std::string& queue) {
    std::optional<QueueCounts> counts;
    ok_or_throw(conn_.queue_counts(kInspect, queue, counts));
    if (!counts) throw std::runtime_error(fmt::format("queue '{}' does not exist on {}", queue, conn_.where()));
    return counts->messages;
  }

  ClusterConfig cluster_;
  Connection conn_;
  Management mgmt_;
};

}  // namespace

std::unique_ptr<BackupReader> make_rabbitmq_reader(const BackupPlanConfig& plan, const ClusterConfig& cluster) {
  return std::make_unique<RabbitReader>(plan, cluster);
}

std::unique_ptr<RestoreTarget> make_rabbitmq_target(const ClusterConfig& cluster) {
  return std::make_unique<RabbitTarget>(cluster);
}

}  // namespace mqdr::backup
