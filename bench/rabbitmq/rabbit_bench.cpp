// Side-by-side benchmark: mqdr's exchange mirror vs RabbitMQ's own shovel plugin (dynamic shovel,
// ack-mode on-confirm, same prefetch) between the harness's two nodes.
//
//   rabbit_bench [--messages N] [--size BYTES] [--prefetch P] [--latency-messages M]
//
// For each mover: N persistent messages of BYTES are published to a fanout exchange on A while
// the mover is stopped (they wait in its source queue), then the mover is started and timed until
// a consumer on B received all N: msgs/s and MB/s. Then M more messages are published while the
// mover runs, each carrying its send time: p50/p99 end-to-end latency. mqdr runs in a child
// process (the real MirrorWorker) so that its peak RSS (VmHWM) can be read. Prints the ratio.
// While each backlog is copied, the CPU seconds of both brokers (their beam.smp, from the
// harness's rabbitmq.pid files; the shovel runs inside rabbit-a's), of mqdr's process and of this
// process (the consumer on B) are measured, with the load average: on a small machine the movers
// compete with the brokers for the same cores. A run during which a broker restarted (other
// engineers' tests restart the shared nodes) is marked INVALID.
// Endpoints from MQDR_RABBIT_A/_B(_MGMT) like the tests. Not a test: nothing is asserted.

#include <amqp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "../common/bench_util.hpp"
#include "mqdr/broker.hpp"
#include "rabbitmq/capture.hpp"
#include "rabbitmq/connection.hpp"
#include "rabbitmq/management.hpp"
#include "rabbitmq/worker.hpp"

using namespace std::chrono_literals;
using mqdr::ClusterConfig;
using mqdr::Duration;
using mqdr::rabbitmq::bytes_of;
using mqdr::rabbitmq::str_of;
using Clock = std::chrono::steady_clock;

namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

ClusterConfig node(const std::string& name, const std::string& uri, const std::string& mgmt) {
  ClusterConfig c;
  c.name = name;
  c.kind = mqdr::ClusterKind::rabbitmq;
  std::string rest = uri.substr(uri.find("://") + 3);
  auto at = rest.find('@');
  std::string cred = rest.substr(0, at);
  rest = rest.substr(at + 1);
  c.rabbitmq.user = cred.substr(0, cred.find(':'));
  c.rabbitmq.password = mqdr::Secret(cred.substr(cred.find(':') + 1));
  std::string hp = rest.substr(0, rest.find('/'));
  c.rabbitmq.host = hp.substr(0, hp.find(':'));
  c.rabbitmq.port = std::stoi(hp.substr(hp.find(':') + 1));
  c.rabbitmq.management_uri = mgmt;
  return c;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

class Amqp {
 public:
  explicit Amqp(const ClusterConfig& c) : conn_(c, "bench") {
    if (!conn_.open(Duration(10000), 0).is_ok() || !conn_.open_channel(1).is_ok() ||
        !conn_.open_channel(2).is_ok()) {
      throw std::runtime_error("cannot connect to " + c.name);
    }
    conn_.set_rpc_timeout(Duration(60000));
  }
  void ok(const char* what, amqp_channel_t ch = 1) {
    auto st = conn_.check(amqp_get_rpc_reply(conn_.state()), what, ch);
    if (!st.is_ok()) throw std::runtime_error(st.message());
  }
  void exchange(const std::string& n) {
    amqp_exchange_declare(conn_.state(), 1, bytes_of(n), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                          amqp_empty_table);
    ok("exchange.declare");
  }
  void queue(const std::string& n, const std::string& ex) {
    amqp_queue_declare(conn_.state(), 1, bytes_of(n), 0, 1, 0, 0, amqp_empty_table);
    ok("queue.declare");
    if (!ex.empty()) {
      amqp_queue_bind(conn_.state(), 1, bytes_of(n), bytes_of(ex), amqp_empty_bytes,
                      amqp_empty_table);
      ok("queue.bind");
    }
  }
  void drop(const std::string& q, const std::string& ex) {
    if (!q.empty()) amqp_queue_delete(conn_.state(), 1, bytes_of(q), 0, 0);
    if (!ex.empty()) amqp_exchange_delete(conn_.state(), 1, bytes_of(ex), 0);
  }
  std::int64_t depth(const std::string& q) {
    std::optional<mqdr::rabbitmq::QueueCounts> c;
    (void)conn_.queue_counts(2, q, c);
    return c ? c->messages : -1;
  }
  std::int64_t consumers(const std::string& q) {
    std::optional<mqdr::rabbitmq::QueueCounts> c;
    (void)conn_.queue_counts(2, q, c);
    return c ? c->consumers : -1;
  }
  // Publishes n persistent messages with the send time in the first 8 bytes.
  void publish(const std::string& ex, std::size_t n, std::size_t size) {
    amqp_basic_properties_t p;
    std::memset(&p, 0, sizeof(p));
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = 2;
    std::string body(std::max<std::size_t>(size, 8), 'x');
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t t = now_ns();
      std::memcpy(body.data(), &t, 8);
      if (amqp_basic_publish(conn_.state(), 1, bytes_of(ex), amqp_empty_bytes, 0, 0, &p,
                             bytes_of(body)) != AMQP_STATUS_OK) {
        throw std::runtime_error("publish failed");
      }
    }
  }
  // Consumes n messages; latencies (ns) when `latency`. Returns the time of the last one.
  // A channel of its own per call (deliveries left over from an earlier call stay queued under
  // the earlier channel number).
  Clock::time_point consume(const std::string& q, std::size_t n, std::vector<std::int64_t>* lat) {
    const amqp_channel_t ch = next_channel_++;
    if (!conn_.open_channel(ch).is_ok()) throw std::runtime_error("channel.open");
    amqp_basic_qos(conn_.state(), ch, 0, 2000, 0);
    ok("basic.qos", ch);
    auto* cok = amqp_basic_consume(conn_.state(), ch, bytes_of(q), amqp_empty_bytes, 0, 0, 0,
                                   amqp_empty_table);
    ok("basic.consume", ch);
    const std::string tag = str_of(cok->consumer_tag);
    std::size_t got = 0;
    std::uint64_t last = 0, acked = 0;
    Clock::time_point at{};
    while (got < n) {
      amqp_maybe_release_buffers(conn_.state());
      amqp_envelope_t env;
      timeval tv{600, 0};
      auto r = amqp_consume_message(conn_.state(), &env, &tv, 0);
      if (r.reply_type != AMQP_RESPONSE_NORMAL) throw std::runtime_error("consume failed/timeout");
      if (env.channel != ch) {
        amqp_destroy_envelope(&env);
        continue;
      }
      if (lat != nullptr && env.message.body.len >= 8) {
        std::int64_t t;
        std::memcpy(&t, env.message.body.bytes, 8);
        lat->push_back(now_ns() - t);
      }
      last = env.delivery_tag;
      amqp_destroy_envelope(&env);
      if (++got % 500 == 0) {
        amqp_basic_ack(conn_.state(), ch, last, 1);
        acked = last;
      }
      at = Clock::now();
    }
    if (last != acked) amqp_basic_ack(conn_.state(), ch, last, 1);
    // Stop this consumer: a later call must not compete with it for the queue.
    amqp_basic_cancel(conn_.state(), ch, bytes_of(tag));
    amqp_channel_close(conn_.state(), ch, AMQP_REPLY_SUCCESS);
    return at;
  }

 private:
  mqdr::rabbitmq::Connection conn_;
  amqp_channel_t next_channel_ = 10;
};

struct Result {
  double seconds = 0;
  double msgs_per_s = 0;
  double mb_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  long peak_rss_kb = -1;
  // CPU seconds during the copy of the backlog (-1: unknown).
  double cpu_a = -1, cpu_b = -1, cpu_mover = -1, cpu_consumer = -1;
  std::string load_before, load_after;
  bool restarted = false;
};

// The broker's own process (beam.smp) of a harness RabbitMQ node; -1 if unknown.
pid_t beam_pid(const std::string& unit) {
  std::ifstream in(bench::env_or("MQDR_HARNESS_DIR", "/tmp/mqdr-harness") + "/" + unit +
                   "/rabbitmq.pid");
  pid_t p = -1;
  in >> p;
  return p;
}

long vm_hwm_kb(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

void percentiles(std::vector<std::int64_t>& lat, Result& r) {
  if (lat.empty()) return;
  std::sort(lat.begin(), lat.end());
  r.p50_ms = lat[lat.size() / 2] / 1e6;
  r.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)] / 1e6;
}

// `start` starts the mover, `stop` stops it; the mover reads `src_queue` on A (which receives
// everything published to `ex_a`) and delivers into `dst_queue` on B.
// `cpu` gives the mover's own CPU seconds so far (-1 when it runs inside a broker).
template <typename Start, typename Stop, typename Rss, typename Cpu>
Result run_mover(const ClusterConfig& a, const ClusterConfig& b, const std::string& ex_a,
                 const std::string& src_queue, const std::string& dst_queue, std::size_t n,
                 std::size_t size, std::size_t latency_n, Start start, Stop stop, Rss rss,
                 Cpu cpu) {
  Result r;
  Amqp pub(a);
  Amqp probe(a);
  pub.publish(ex_a, n, size);
  while (probe.depth(src_queue) < static_cast<std::int64_t>(n)) std::this_thread::sleep_for(100ms);
  Amqp cons(b);
  const pid_t beam_a = beam_pid("rabbit-a"), beam_b = beam_pid("rabbit-b");
  const double a0 = bench::proc_cpu_s(beam_a), b0 = bench::proc_cpu_s(beam_b);
  const double c0 = bench::proc_cpu_s(getpid());
  r.load_before = bench::loadavg();
  const auto t0 = Clock::now();
  start();
  const auto t1 = cons.consume(dst_queue, n, nullptr);
  const double mover = cpu();
  const double a1 = bench::proc_cpu_s(beam_a), b1 = bench::proc_cpu_s(beam_b);
  const double c1 = bench::proc_cpu_s(getpid());
  r.load_after = bench::loadavg();
  if (a0 >= 0 && a1 >= 0) r.cpu_a = a1 - a0;
  if (b0 >= 0 && b1 >= 0) r.cpu_b = b1 - b0;
  if (c0 >= 0 && c1 >= 0) r.cpu_consumer = c1 - c0;
  r.cpu_mover = mover;
  r.seconds = std::chrono::duration<double>(t1 - t0).count();
  r.msgs_per_s = n / r.seconds;
  r.mb_per_s = n * static_cast<double>(size) / r.seconds / 1e6;
  // Live phase for latency.
  std::vector<std::int64_t> lat;
  std::thread consumer([&] { cons.consume(dst_queue, latency_n, &lat); });
  pub.publish(ex_a, latency_n, size);
  consumer.join();
  percentiles(lat, r);
  r.peak_rss_kb = rss();
  stop();
  r.restarted = beam_pid("rabbit-a") != beam_a || beam_pid("rabbit-b") != beam_b;
  return r;
}

void print(const char* name, const Result& r, std::size_t n) {
  std::cout << fmt::format(
      "{:<14} {:>9.1f} s {:>10.0f} msg/s {:>8.1f} MB/s   p50 {:>8.1f} ms  p99 {:>8.1f} ms  "
      "peak RSS {}{}\n",
      name, r.seconds, r.msgs_per_s, r.mb_per_s, r.p50_ms, r.p99_ms,
      r.peak_rss_kb < 0 ? std::string("n/a (inside the broker)")
                        : fmt::format("{:.1f} MiB", r.peak_rss_kb / 1024.0),
      r.restarted ? "  INVALID: a broker restarted during the run" : "");
  auto cores = [&](double s) { return s < 0 ? std::string("?") : fmt::format("{:.2f}", s / r.seconds); };
  auto us = [&](double s) { return s < 0 ? std::string("?") : fmt::format("{:.0f}", s * 1e6 / n); };
  std::cout << fmt::format(
      "{:<14} copy CPU, cores (us/msg): rabbit-a {} ({}), rabbit-b {} ({}), mover {} ({}), "
      "consumer on B {} ({}); load {} -> {}\n",
      "", cores(r.cpu_a), us(r.cpu_a), cores(r.cpu_b), us(r.cpu_b),
      r.cpu_mover < 0 ? std::string("inside rabbit-a") : cores(r.cpu_mover),
      r.cpu_mover < 0 ? std::string("-") : us(r.cpu_mover), cores(r.cpu_consumer),
      us(r.cpu_consumer), r.load_before, r.load_after);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 1000000, size = 1024, latency_n = 20000;
  int prefetch = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--messages") n = std::stoul(argv[i + 1]);
    else if (k == "--size") size = std::stoul(argv[i + 1]);
    else if (k == "--prefetch") prefetch = std::stoi(argv[i + 1]);
    else if (k == "--latency-messages") latency_n = std::stoul(argv[i + 1]);
    else {
      std::cerr << "usage: rabbit_bench [--messages N] [--size BYTES] [--prefetch P] "
                   "[--latency-messages M]\n";
      return 2;
    }
  }
  spdlog::set_level(spdlog::level::warn);
  const auto a = node("rabbit-a", env_or("MQDR_RABBIT_A", "amqp://mqdr:mqdr-secret@127.0.0.1:35672"),
                      env_or("MQDR_RABBIT_A_MGMT", "http://127.0.0.1:35673"));
  const auto b = node("rabbit-b", env_or("MQDR_RABBIT_B", "amqp://mqdr:mqdr-secret@127.0.0.1:45672"),
                      env_or("MQDR_RABBIT_B_MGMT", "http://127.0.0.1:45673"));
  std::random_device rd;
  const std::string sfx = fmt::format("{:08x}", rd());
  std::cout << fmt::format("{} persistent messages of {} bytes, prefetch {}, latency over {}\n", n,
                           size, prefetch, latency_n);

  // --- mqdr ---
  const std::string mirror = "bench-" + sfx;
  const std::string ex = "bench.ex." + sfx;
  const std::string q_b = "bench.q." + sfx;
  const std::string capture = mqdr::rabbitmq::capture_queue_name(mirror, ex);
  Result mq;
  {
    Amqp sa(a), sb(b);
    sa.exchange(ex);
    sb.exchange(ex);
    sb.queue(q_b, ex);
    // The capture queue must exist before the backlog is published: start mqdr once briefly.
    mqdr::MirrorContext ctx;
    ctx.config = std::make_shared<mqdr::Config>();
    ctx.mirror.name = mirror;
    ctx.mirror.kind = mqdr::ClusterKind::rabbitmq;
    ctx.mirror.rabbitmq.exchanges = {ex};
    ctx.mirror.rabbitmq.prefetch = prefetch;
    ctx.mirror.rabbitmq.sync_definitions = false;
    ctx.source = a;
    ctx.target = b;
    ctx.stats = std::make_shared<mqdr::WorkerStats>(mirror, "rabbitmq");
    {
      mqdr::rabbitmq::Connection setup(a, "bench setup");
      if (!setup.open(Duration(10000)).is_ok()) return 1;
      mqdr::rabbitmq::Management mgmt(a, Duration(10000));
      std::vector<mqdr::rabbitmq::CaptureState> cs;
      auto st = mqdr::rabbitmq::ensure_capture(setup, mgmt, ctx.mirror, cs);
      if (!st.is_ok()) {
        std::cerr << st.message() << "\n";
        return 1;
      }
    }
    pid_t child = -1;
    mq = run_mover(
        a, b, ex, capture, q_b, n, size, latency_n,
        [&] {
          child = fork();
          if (child == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the benchmark
            mqdr::rabbitmq::WorkerOptions wo;
            wo.trim_standby = false;
            mqdr::rabbitmq::MirrorWorker worker(ctx, wo);
            std::stop_source stop;
            std::thread t([&] { (void)worker.run(stop.get_token()); });
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGTERM);
            sigprocmask(SIG_BLOCK, &set, nullptr);
            int sig = 0;
            sigwait(&set, &sig);
            stop.request_stop();
            t.join();
            _exit(0);
          }
        },
        [&] {
          kill(child, SIGTERM);
          int status = 0;
          waitpid(child, &status, 0);
        },
        [&] { return vm_hwm_kb(child); }, [&] { return bench::proc_cpu_s(child); });
    sa.drop(capture, ex);
    sb.drop(q_b, ex);
  }
  print("mqdr", mq, n);

  // --- shovel plugin ---
  const std::string ex2 = "bench.shovel.ex." + sfx;
  const std::string src = "bench.shovel.src." + sfx;
  const std::string dst = "bench.shovel.dst." + sfx;
  const std::string shovel = "bench-" + sfx;
  Result sh;
  {
    Amqp sa(a), sb(b);
    sa.exchange(ex2);
    sa.queue(src, ex2);
    sb.exchange(ex2);
    sb.queue(dst, ex2);
    mqdr::rabbitmq::Management mgmt(a, Duration(30000));
    auto uri = [](const ClusterConfig& c) {
      return fmt::format("amqp://{}:{}@{}:{}", c.rabbitmq.user, c.rabbitmq.password.reveal(),
                         c.rabbitmq.host, c.rabbitmq.port);
    };
    sh = run_mover(
        a, b, ex2, src, dst, n, size, latency_n,
        [&] {
          nlohmann::json v = {{"value",
                               {{"src-protocol", "amqp091"},
                                {"src-uri", uri(a)},
                                {"src-queue", src},
                                {"dest-protocol", "amqp091"},
                                {"dest-uri", uri(b)},
                                {"dest-exchange", ex2},
                                {"ack-mode", "on-confirm"},
                                {"src-prefetch-count", prefetch}}}};
          auto st = mgmt.put("/api/parameters/shovel/%2F/" + shovel, v);
          if (!st.is_ok()) throw std::runtime_error(st.message());
        },
        [&] { (void)mgmt.del("/api/parameters/shovel/%2F/" + shovel); }, [] { return -1L; },
        [] { return -1.0; });
    sa.drop(src, ex2);
    sb.drop(dst, ex2);
  }
  print("shovel plugin", sh, n);
  std::cout << fmt::format("throughput ratio mqdr / shovel plugin: {:.2f}x (bar: 1.5x)\n",
                           mq.msgs_per_s / sh.msgs_per_s);
  return 0;
}
