#pragma once
// Helpers for the RabbitMQ integration tests: the harness's two nodes as ClusterConfigs, a small
// AMQP test client (declare, publish, drain a queue) and bounded waits. Names get a random
// suffix per run so engineers and runs never collide.

#include <amqp.h>
#include <gtest/gtest.h>
#include <sys/time.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "mqdr/config.hpp"
#include "rabbitmq/codec.hpp"
#include "rabbitmq/connection.hpp"
#include "rabbitmq/management.hpp"

namespace mqdr::test::rabbit {

using namespace std::chrono_literals;
using mqdr::rabbitmq::bytes_of;
using mqdr::rabbitmq::str_of;

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// "amqp://user:pass@host:port[/vhost]" -> ClusterConfig named `name`.
inline ClusterConfig cluster_from_uri(const std::string& name, const std::string& uri,
                                      const std::string& mgmt, const std::string& vhost) {
  ClusterConfig c;
  c.name = name;
  c.kind = ClusterKind::rabbitmq;
  auto& r = c.rabbitmq;
  std::string rest = uri.substr(uri.find("://") + 3);
  auto at = rest.find('@');
  std::string cred = rest.substr(0, at);
  rest = rest.substr(at + 1);
  r.user = cred.substr(0, cred.find(':'));
  r.password = Secret(cred.substr(cred.find(':') + 1));
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  r.host = hostport.substr(0, hostport.find(':'));
  r.port = std::stoi(hostport.substr(hostport.find(':') + 1));
  r.vhost = vhost;
  r.uri = fmt::format("amqp://{}@{}:{}/", r.user, r.host, r.port);
  r.management_uri = mgmt;
  return c;
}

inline ClusterConfig node_a(const std::string& vhost = "/", bool mgmt = true) {
  return cluster_from_uri("rabbit-a", env_or("MQDR_RABBIT_A", "amqp://mqdr:mqdr-secret@127.0.0.1:35672"),
                          mgmt ? env_or("MQDR_RABBIT_A_MGMT", "http://127.0.0.1:35673") : "", vhost);
}
inline ClusterConfig node_b(const std::string& vhost = "/", bool mgmt = true) {
  return cluster_from_uri("rabbit-b", env_or("MQDR_RABBIT_B", "amqp://mqdr:mqdr-secret@127.0.0.1:45672"),
                          mgmt ? env_or("MQDR_RABBIT_B_MGMT", "http://127.0.0.1:45673") : "", vhost);
}

inline std::string suffix() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

// Waits until `pred` holds, polling every 100 ms, at most `limit`.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return pred();
}

struct Message {
  std::string exchange;
  std::string routing_key;
  std::string body;
  Record record;  // properties as attributes/headers (rabbitmq::properties_to_record)
};

// A plain AMQP client for the test's side of things (the application).
class Client {
 public:
  explicit Client(const ClusterConfig& c) : conn_(c, "test client") {
    Status st = conn_.open(Duration(10000), 0);
    if (!st.is_ok()) throw std::runtime_error(st.message());
    conn_.set_rpc_timeout(Duration(60000));  // brokers on a shared, busy machine
    st = conn_.open_channel(1);
    if (st.is_ok()) st = conn_.open_channel(2);
    if (!st.is_ok()) throw std::runtime_error(st.message());
  }

  rabbitmq::Connection& conn() { return conn_; }

  void check(const char* what, amqp_channel_t ch = 1) {
    Status st = conn_.check(amqp_get_rpc_reply(conn_.state()), what, ch);
    if (!st.is_ok()) {
      if (conn_.is_open() && ch == 1) (void)conn_.open_channel(1);
      throw std::runtime_error(st.message());
    }
  }

  void exchange(const std::string& name, const char* type) {
    amqp_exchange_declare(conn_.state(), 1, bytes_of(name), amqp_cstring_bytes(type), 0, 1, 0, 0,
                          amqp_empty_table);
    check("exchange.declare");
  }
  void queue(const std::string& name, amqp_table_t args = amqp_empty_table) {
    amqp_queue_declare(conn_.state(), 1, bytes_of(name), 0, 1, 0, 0, args);
    check("queue.declare");
  }
  void bind(const std::string& queue, const std::string& exchange, const std::string& key,
            amqp_table_t args = amqp_empty_table) {
    amqp_queue_bind(conn_.state(), 1, bytes_of(queue), bytes_of(exchange), bytes_of(key), args);
    check("queue.bind");
  }
  void bind_exchange(const std::string& dst, const std::string& src, const std::string& key) {
    amqp_exchange_bind(conn_.state(), 1, bytes_of(dst), bytes_of(src), bytes_of(key),
                       amqp_empty_table);
    check("exchange.bind");
  }
  void delete_queue(const std::string& name) {
    amqp_queue_delete(conn_.state(), 1, bytes_of(name), 0, 0);
    try {
      check("queue.delete");
    } catch (const std::exception&) {
    }
  }
  void delete_exchange(const std::string& name) {
    amqp_exchange_delete(conn_.state(), 1, bytes_of(name), 0);
    try {
      check("exchange.delete");
    } catch (const std::exception&) {
    }
  }
  // Ready messages; -1 when the queue does not exist.
  std::int64_t depth(const std::string& queue) {
    auto c = counts(queue);
    return c ? static_cast<std::int64_t>(c->messages) : -1;
  }
  std::int64_t consumers(const std::string& queue) {
    auto c = counts(queue);
    return c ? static_cast<std::int64_t>(c->consumers) : -1;
  }
  std::optional<rabbitmq::QueueCounts> counts(const std::string& queue) {
    std::optional<rabbitmq::QueueCounts> c;
    Status st = conn_.queue_counts(2, queue, c);
    if (!st.is_ok() && conn_.reply_code() != rabbitmq::kNotFound) {
      throw std::runtime_error(st.message());
    }
    return c;
  }

  void publish(const std::string& exchange, const std::string& key,
               const amqp_basic_properties_t& props, const std::string& body) {
    int rc = amqp_basic_publish(conn_.state(), 1, bytes_of(exchange), bytes_of(key), 0, 0, &props,
                                bytes_of(body));
    if (rc != AMQP_STATUS_OK) throw std::runtime_error(amqp_error_string2(rc));
  }

  // Consumes `n` messages from `queue` (acking them), waiting at most `limit` in total.
  std::vector<Message> take(const std::string& queue, std::size_t n,
                            std::chrono::milliseconds limit = 60s) {
    std::vector<Message> out;
    if (n == 0) return out;
    // A channel of its own per call: deliveries in flight when it closes must not leak into the
    // next call (rabbitmq-c keeps them queued under the channel number).
    const amqp_channel_t ch = next_channel_++;
    if (Status st = conn_.open_channel(ch); !st.is_ok()) throw std::runtime_error(st.message());
    amqp_basic_qos(conn_.state(), ch, 0, 1000, 0);
    check("basic.qos", ch);
    auto* ok = amqp_basic_consume(conn_.state(), ch, bytes_of(queue), amqp_empty_bytes, 0, 0, 0,
                                  amqp_empty_table);
    check("basic.consume", ch);
    const std::string tag = str_of(ok->consumer_tag);
    const auto until = std::chrono::steady_clock::now() + limit;
    std::uint64_t last = 0;
    std::uint64_t acked = 0;
    while (out.size() < n && std::chrono::steady_clock::now() < until) {
      amqp_maybe_release_buffers(conn_.state());
      amqp_envelope_t env;
      timeval tv{1, 0};
      auto res = amqp_consume_message(conn_.state(), &env, &tv, 0);
      if (res.reply_type != AMQP_RESPONSE_NORMAL) {
        if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            res.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
          amqp_frame_t f;
          timeval z{0, 0};
          amqp_simple_wait_frame_noblock(conn_.state(), &f, &z);
        }
        continue;
      }
      if (env.channel != ch) {
        amqp_destroy_envelope(&env);
        continue;
      }
      Message m;
      m.exchange = str_of(env.exchange);
      m.routing_key = str_of(env.routing_key);
      m.body = str_of(env.message.body);
      rabbitmq::properties_to_record(env.message.properties, m.record);
      last = env.delivery_tag;
      amqp_destroy_envelope(&env);
      out.push_back(std::move(m));
      if (out.size() % 500 == 0) {
        amqp_basic_ack(conn_.state(), ch, last, 1);
        acked = last;
      }
    }
    if (last != acked) amqp_basic_ack(conn_.state(), ch, last, 1);
    amqp_basic_cancel(conn_.state(), ch, bytes_of(tag));
    // Messages delivered after the cancel are unacked and go back to the queue with the channel.
    amqp_channel_close(conn_.state(), ch, AMQP_REPLY_SUCCESS);
    return out;
  }

 private:
  rabbitmq::Connection conn_;
  amqp_channel_t next_channel_ = 10;
};

// Headers of a mirrored message with the mirror's own headers (x-mqdr-*) removed, as text.
inline std::vector<Header> app_headers(const Record& r) {
  std::vector<Header> out;
  for (const auto& h : r.headers) {
    if (h.key.rfind("x-mqdr-", 0) != 0) out.push_back(h);
  }
  return out;
}

// Properties except the headers table.
inline std::vector<std::pair<std::string, std::string>> plain_attributes(const Record& r) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& a : r.attributes) {
    if (a.first != rabbitmq::kAttrHeaders) out.push_back(a);
  }
  return out;
}

// Typed headers table without x-mqdr-* entries, re-encoded, for byte comparison.
inline std::string typed_app_headers(const Record& r) {
  for (const auto& a : r.attributes) {
    if (a.first != rabbitmq::kAttrHeaders) continue;
    rabbitmq::Arena arena;
    amqp_table_t t;
    if (!rabbitmq::decode_table(a.second, t, arena)) return "<undecodable>";
    std::vector<amqp_table_entry_t> keep;
    for (int i = 0; i < t.num_entries; ++i) {
      if (str_of(t.entries[i].key).rfind("x-mqdr-", 0) != 0) keep.push_back(t.entries[i]);
    }
    if (keep.empty()) return "";
    amqp_table_t k{static_cast<int>(keep.size()), keep.data()};
    return rabbitmq::encode_table(k);
  }
  return "";
}

}  // namespace mqdr::test::rabbit

#include <filesystem>
#include <memory>

#include "mqdr/broker.hpp"
#include "rabbitmq/worker.hpp"

namespace mqdr::test::rabbit {

inline MirrorContext mirror_context(const std::string& name, const ClusterConfig& a,
                                    const ClusterConfig& b) {
  MirrorContext ctx;
  auto cfg = std::make_shared<Config>();
  cfg->clusters[a.name] = a;
  cfg->clusters[b.name] = b;
  ctx.config = cfg;
  ctx.mirror.name = name;
  ctx.mirror.kind = ClusterKind::rabbitmq;
  ctx.mirror.source = a.name;
  ctx.mirror.target = b.name;
  ctx.source = a;
  ctx.target = b;
  ctx.stats = std::make_shared<WorkerStats>(name, "rabbitmq");
  ctx.state_dir = std::filesystem::temp_directory_path() / ("mqdr-rabbit-" + name);
  std::filesystem::create_directories(ctx.state_dir);
  return ctx;
}

// Runs a MirrorWorker on a thread of its own until stop() or destruction.
class RunningWorker {
 public:
  explicit RunningWorker(MirrorContext ctx, rabbitmq::WorkerOptions options = {})
      : ctx_(std::move(ctx)), worker_(ctx_, options) {
    thread_ = std::jthread([this](std::stop_token st) { result_ = worker_.run(st); });
  }
  ~RunningWorker() { stop(); }
  Status stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
    return result_;
  }
  StatsSnapshot stats() const { return ctx_.stats->snapshot(); }
  const MirrorContext& ctx() const { return ctx_; }

 private:
  MirrorContext ctx_;
  rabbitmq::MirrorWorker worker_;
  Status result_;
  std::jthread thread_;
};

}  // namespace mqdr::test::rabbit
