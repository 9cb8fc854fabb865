// Side-by-side benchmark: mqdr's NATS relay (`mqdr run -c <generated config>`, a child process,
// nats-a -> nats-b) vs nats-server's own JetStream sourcing (a stream on nats-leaf whose source
// is the stream on nats-hub, through $JS.hub.API; the servers do the copying, no mqdr).
//
//   nats_bench [--messages N[,N...]] [--size BYTES] [--latency-messages M] [--latency-rate R]
//              [--modes relay,native] [--mqdr PATH] [--batch B] [--max-inflight F]
//              [--keep-logs DIR]
//
// Per size N and mode: a file-storage stream (one subject) is created on the source server and
// filled with N messages of BYTES while nothing copies it. Then the copy is started (relay: mqdr
// is started; native: the sourcing stream is created on the target) and the target stream's
// message count is polled every 20 ms until it holds N. msgs/s and MiB/s (of payload bytes)
// from the target stream's first to last message timestamp (the server's store times), and from
// the start of the copy. CPU seconds: mqdr's process (relay) and the two servers' processes
// (both modes; their utime + stime difference over the copy). Peak RSS: mqdr's VmHWM; the
// servers' VmRSS growth over the copy (they are shared, long-running processes, so this is only
// indicative). Then M messages are published at R/s to the source, each carrying its send time,
// and read on the target by a push consumer (deliver new): p50/p99 end-to-end latency.
// The order of the modes alternates from one size to the next. Streams carry a random suffix
// and are deleted afterwards. Endpoints from MQDR_NATS_A/_B/_HUB/_LEAF; server pids from
// ${MQDR_HARNESS_DIR:-/tmp/mqdr-harness}/<unit>/pid. Not a test: nothing is asserted.
// The two pairs are the same nats-server binary with the same settings; hub/leaf add a
// JetStream domain and the leafnode link the native sourcing needs.

#include <nats/nats.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <random>

#include "../common/bench_util.hpp"

#ifndef MQDR_BIN
#define MQDR_BIN "mqdr"
#endif

using namespace std::chrono_literals;
using bench::Clock;

namespace {

struct Side {
  std::string url, unit, domain;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  void open(std::int64_t max_pending = 4096) {
    if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) {
      throw std::runtime_error("cannot connect to " + url);
    }
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = 30000;
    o.PublishAsync.MaxPending = max_pending;
    if (natsConnection_JetStream(&js, nc, &o) != NATS_OK) throw std::runtime_error("jetstream " + url);
  }
  void close() {
    if (js != nullptr) jsCtx_Destroy(js);
    if (nc != nullptr) natsConnection_Destroy(nc);
    js = nullptr;
    nc = nullptr;
  }
  pid_t server_pid() const { return bench::harness_pid(unit); }
};

void add_stream(Side& s, const std::string& name, const std::string& subject,
                const std::string& source_prefix = "") {
  jsStreamConfig c;
  jsStreamConfig_Init(&c);
  c.Name = name.c_str();
  const char* subj[1] = {subject.c_str()};
  jsStreamSource src;
  jsExternalStream ext;
  jsStreamSource* srcs[1] = {&src};
  if (source_prefix.empty()) {
    c.Subjects = subj;
    c.SubjectsLen = 1;
  } else {
    jsStreamSource_Init(&src);
    src.Name = name.c_str();
    std::memset(&ext, 0, sizeof ext);
    ext.APIPrefix = source_prefix.c_str();
    ext.DeliverPrefix = "";
    src.External = &ext;
    c.Sources = srcs;
    c.SourcesLen = 1;
  }
  c.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus st = NATS_OK;
  // A shared server may be restarting (other engineers' tests): a few tries.
  for (int attempt = 0; attempt < 5; ++attempt) {
    st = js_AddStream(&si, s.js, &c, nullptr, &code);
    if (st == NATS_OK) break;
    std::this_thread::sleep_for(3s);
  }
  if (st != NATS_OK) {
    throw std::runtime_error("add stream " + name + " on " + s.url + ": " + natsStatus_GetText(st) +
                             " " + nats_GetLastError(nullptr) + " code " + std::to_string(code));
  }
  jsStreamInfo_Destroy(si);
}

void delete_stream(Side& s, const std::string& name) {
  jsErrCode code = static_cast<jsErrCode>(0);
  (void)js_DeleteStream(s.js, name.c_str(), nullptr, &code);
}

struct State {
  std::uint64_t msgs = 0;
  std::int64_t first_ns = 0, last_ns = 0;
};

State stream_state(Side& s, const std::string& name) {
  State out;
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  if (js_GetStreamInfo(&si, s.js, name.c_str(), nullptr, &code) == NATS_OK && si != nullptr) {
    out.msgs = si->State.Msgs;
    out.first_ns = si->State.FirstTime;
    out.last_ns = si->State.LastTime;
    jsStreamInfo_Destroy(si);
  }
  return out;
}

// Asynchronous JetStream publishes as fast as they are acknowledged; msgs/s.
double fill(Side& s, const std::string& subject, std::size_t n, std::size_t size) {
  std::string body(size, 'x');
  std::mt19937_64 rng(7);
  for (auto& c : body) c = static_cast<char>('a' + rng() % 26);
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t ts = bench::now_ns();
    std::memcpy(body.data(), &ts, 8);
    natsStatus st = js_PublishAsync(s.js, subject.c_str(), body.data(), static_cast<int>(size), nullptr);
    if (st != NATS_OK) throw std::runtime_error(std::string("publish: ") + natsStatus_GetText(st));
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 300000;
  if (js_PublishAsyncComplete(s.js, &po) != NATS_OK) throw std::runtime_error("publish complete");
  return static_cast<double>(n) / bench::secs(t0, Clock::now());
}

// The first second's messages are a warm-up: counted, not measured.
struct LatencyCollector {
  std::mutex mu;
  std::vector<std::int64_t> lat;
  std::size_t got = 0;
  std::uint64_t warm = 0;
};

void on_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* lc = static_cast<LatencyCollector*>(closure);
  if (natsMsg_GetDataLength(msg) >= 16) {
    std::int64_t ts;
    std::uint64_t seq;
    std::memcpy(&ts, natsMsg_GetData(msg), 8);
    std::memcpy(&seq, natsMsg_GetData(msg) + 8, 8);
    const std::int64_t d = bench::now_ns() - ts;
    std::lock_guard<std::mutex> g(lc->mu);
    ++lc->got;
    if (seq >= lc->warm) lc->lat.push_back(d);
  }
  natsMsg_Destroy(msg);
}

// A push consumer (deliver new, no acks) on the target stream; m messages published at
// `rate`/s to the source subject. Latencies in ns.
std::vector<std::int64_t> latency(Side& src, Side& dst, const std::string& stream,
                                  const std::string& subject, const std::string& sfx,
                                  std::size_t m, double rate, std::size_t size) {
  LatencyCollector lc;
  lc.warm = static_cast<std::uint64_t>(rate);
  if (m == 0) return lc.lat;
  const std::string deliver = "_nbench.deliver." + sfx + "." + stream;
  natsSubscription* sub = nullptr;
  if (natsConnection_Subscribe(&sub, dst.nc, deliver.c_str(), on_msg, &lc) != NATS_OK) {
    throw std::runtime_error("subscribe");
  }
  natsSubscription_SetPendingLimits(sub, -1, -1);
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.DeliverSubject = deliver.c_str();
  cc.DeliverPolicy = js_DeliverNew;
  cc.AckPolicy = js_AckNone;
  jsConsumerInfo* ci = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  if (js_AddConsumer(&ci, dst.js, stream.c_str(), &cc, nullptr, &code) != NATS_OK) {
    natsSubscription_Destroy(sub);
    throw std::runtime_error("add consumer: " + std::string(nats_GetLastError(nullptr)));
  }
  const std::string cname = ci->Name;
  jsConsumerInfo_Destroy(ci);
  std::this_thread::sleep_for(500ms);
  std::string body(size, 'y');
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < m; ++i) {
    std::this_thread::sleep_until(t0 + std::chrono::nanoseconds(static_cast<std::int64_t>(
                                           static_cast<double>(i) * 1e9 / rate)));
    std::int64_t ts = bench::now_ns();
    const std::uint64_t seq = i;
    std::memcpy(body.data(), &ts, 8);
    std::memcpy(body.data() + 8, &seq, 8);
    (void)js_PublishAsync(src.js, subject.c_str(), body.data(), static_cast<int>(size), nullptr);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60000;
  (void)js_PublishAsyncComplete(src.js, &po);
  const auto until = Clock::now() + 60s;
  while (Clock::now() < until) {
    {
      std::lock_guard<std::mutex> g(lc.mu);
      if (lc.got >= m) break;
    }
    std::this_thread::sleep_for(50ms);
  }
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  (void)js_DeleteConsumer(dst.js, stream.c_str(), cname.c_str(), nullptr, &code);
  std::lock_guard<std::mutex> g(lc.mu);
  return lc.lat;
}

struct Result {
  std::string mode;
  std::size_t n = 0;
  std::uint64_t copied = 0;
  double startup_s = -1, copy_s = -1, total_s = -1;
  double rate = 0, mibps = 0, rate_total = 0;
  double mqdr_cpu_s = -1, servers_cpu_s = -1;
  long mqdr_hwm_kb = -1, servers_rss_delta_kb = 0;
  bench::Percentiles lat;
  std::string load;
  double fill_rate = 0;
  bool complete = false;
  bool restarted = false;  // a server's pid changed during the run: figures not comparable
};

double servers_cpu(const Side& a, const Side& b) {
  return bench::proc_cpu_s(a.server_pid()) + bench::proc_cpu_s(b.server_pid());
}
long servers_rss(const Side& a, const Side& b) {
  return bench::proc_status_kb(a.server_pid(), "VmRSS") + bench::proc_status_kb(b.server_pid(), "VmRSS");
}

Result run(const std::string& mode, Side& src, Side& dst, std::size_t n, std::size_t size,
           std::size_t m, double rate, const std::string& sfx, const std::string& work,
           const std::string& mqdr_bin, int batch, int max_inflight) {
  Result r;
  r.mode = mode;
  r.n = n;
  const std::string stream = "NB_" + sfx + "_" + mode + "_" + std::to_string(n);
  const std::string subject = "nbench." + sfx + "." + mode + "." + std::to_string(n);
  add_stream(src, stream, subject);
  r.fill_rate = fill(src, subject, n, size);
  std::printf("filled %s on %s with %zu messages: %.0f msgs/s\n", stream.c_str(), src.url.c_str(),
              n, r.fill_rate);
  std::fflush(stdout);
  r.load = bench::loadavg();
  const pid_t spid = src.server_pid(), dpid = dst.server_pid();
  const double cpu0 = servers_cpu(src, dst);
  const long rss0 = servers_rss(src, dst);
  pid_t pid = -1;
  const auto t0 = Clock::now();
  if (mode == "relay") {
    const std::string dir = work + "/" + stream;
    std::filesystem::create_directories(dir + "/state");
    std::ofstream(dir + "/mqdr.yaml")
        << "version: 1\n"
        << "daemon:\n  state_dir: " << dir << "/state\n"
        << "  admin: { listen: '127.0.0.1:" << bench::free_port() << "' }\n"
        << "  log: { level: warn, format: text }\n  shutdown_timeout: 15s\n"
        << "clusters:\n  bench-src: { kind: nats, servers: ['" << src.url << "'] }\n"
        << "  bench-dst: { kind: nats, servers: ['" << dst.url << "'] }\n"
        << "mirrors:\n  - name: nb" << sfx << "n" << n << "\n    source: bench-src\n"
        << "    target: bench-dst\n    streams: ['" << stream << "']\n    mode: relay\n"
        << "    batch: " << batch << "\n    max_inflight: " << max_inflight << "\n";
    pid = bench::spawn({mqdr_bin, "run", "-c", dir + "/mqdr.yaml"}, dir + "/mqdr.log");
  } else {
    add_stream(dst, stream, "", "$JS." + src.domain + ".API");
  }
  Clock::time_point first{}, last{};
  bool seen = false;
  State st;
  const auto until = t0 + std::chrono::seconds(600 + static_cast<long>(n / 1000));
  while (Clock::now() < until) {
    if (pid > 0 && !bench::alive(pid)) {
      std::cerr << "mqdr exited early; see " << work << "/" << stream << "/mqdr.log\n";
      break;
    }
    st = stream_state(dst, stream);
    const auto now = Clock::now();
    if (st.msgs > 0 && !seen) {
      seen = true;
      first = now;
    }
    if (st.msgs >= n) {
      last = now;
      r.complete = true;
      if (pid > 0) r.mqdr_cpu_s = bench::proc_cpu_s(pid);
      r.servers_cpu_s = servers_cpu(src, dst) - cpu0;
      r.servers_rss_delta_kb = servers_rss(src, dst) - rss0;
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  r.copied = st.msgs;
  if (r.complete) {
    r.startup_s = bench::secs(t0, first);
    r.copy_s = static_cast<double>(st.last_ns - st.first_ns) / 1e9;
    r.total_s = bench::secs(t0, last);
    r.rate = static_cast<double>(n) / r.copy_s;
    r.mibps = r.rate * static_cast<double>(size) / 1048576.0;
    r.rate_total = static_cast<double>(n) / r.total_s;
    r.lat = bench::percentiles(latency(src, dst, stream, subject, sfx, m, rate, size));
  }
  if (pid > 0) {
    r.mqdr_hwm_kb = bench::proc_status_kb(pid, "VmHWM");
    bench::stop(pid);
  }
  r.restarted = src.server_pid() != spid || dst.server_pid() != dpid;
  delete_stream(dst, stream);
  delete_stream(src, stream);
  return r;
}

std::string fmt_kb(long kb) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", static_cast<double>(kb) / 1024.0);
  return b;
}

void print(const Result& r) {
  std::printf(
      "%-6s n=%-8zu copied %-8llu start->first %5.2f s  first->last %7.2f s  %9.0f msgs/s  %6.1f "
      "MiB/s  (from start %9.0f msgs/s)  mqdr CPU %6.2f s  servers CPU %6.2f s  mqdr peak RSS %s  "
      "servers RSS +%s  latency p50 %.1f ms p99 %.1f ms max %.1f ms (%zu)  load %s%s%s\n",
      r.mode.c_str(), r.n, static_cast<unsigned long long>(r.copied), r.startup_s, r.copy_s, r.rate,
      r.mibps, r.rate_total, r.mqdr_cpu_s, r.servers_cpu_s,
      r.mqdr_hwm_kb < 0 ? "n/a (no process)" : fmt_kb(r.mqdr_hwm_kb).c_str(),
      fmt_kb(r.servers_rss_delta_kb).c_str(), r.lat.p50_ms, r.lat.p99_ms, r.lat.max_ms,
      r.lat.count, r.load.c_str(), r.complete ? "" : "  INCOMPLETE",
      r.restarted ? "  INVALID: a server restarted during the run" : "");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes = {100000, 1000000};
  std::size_t size = 512, m = 10000;
  double rate = 1000;
  int batch = 256, max_inflight = 4096;
  std::string modes = "relay,native", logs_dir;
  std::string mqdr_bin = bench::env_or("MQDR_BIN", MQDR_BIN);
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--messages") {
      sizes.clear();
      std::stringstream ss(v);
      std::string item;
      while (std::getline(ss, item, ',')) sizes.push_back(std::stoul(item));
    } else if (k == "--size") size = std::stoul(v);
    else if (k == "--latency-messages") m = std::stoul(v);
    else if (k == "--latency-rate") rate = std::stod(v);
    else if (k == "--modes") modes = v;
    else if (k == "--mqdr") mqdr_bin = v;
    else if (k == "--batch") batch = std::stoi(v);
    else if (k == "--max-inflight") max_inflight = std::stoi(v);
    else if (k == "--keep-logs") logs_dir = v;
    else {
      std::cerr << "usage: nats_bench [--messages N[,N...]] [--size BYTES] [--latency-messages M] "
                   "[--latency-rate R] [--modes relay,native] [--mqdr PATH] [--batch B] "
                   "[--max-inflight F] [--keep-logs DIR]\n";
      return 2;
    }
  }
  if (size < 16) size = 16;
  std::random_device rd;
  char sfxb[16];
  std::snprintf(sfxb, sizeof sfxb, "%08x", rd());
  const std::string sfx = sfxb;
  const std::string work = logs_dir.empty() ? "/tmp/mqdr-nbench-" + sfx : logs_dir;
  std::filesystem::create_directories(work);
  Side a{bench::env_or("MQDR_NATS_A", "nats://127.0.0.1:14222"), "nats-a", ""};
  Side b{bench::env_or("MQDR_NATS_B", "nats://127.0.0.1:24222"), "nats-b", ""};
  Side hub{bench::env_or("MQDR_NATS_HUB", "nats://127.0.0.1:34222"), "nats-hub", "hub"};
  Side leaf{bench::env_or("MQDR_NATS_LEAF", "nats://127.0.0.1:44222"), "nats-leaf", "leaf"};
  const bool want_relay = modes.find("relay") != std::string::npos;
  const bool want_native = modes.find("native") != std::string::npos;
  if (want_relay) {
    a.open();
    b.open();
  }
  if (want_native) {
    hub.open();
    leaf.open();
  }
  std::printf("nats_bench %s: relay %s -> %s (mqdr batch %d, max_inflight %d), native %s -> %s "
              "(stream source via $JS.hub.API); %zu B messages; latency %zu at %.0f/s; mqdr %s; "
              "load average at start %s\n",
              bench::utc_now().c_str(), a.url.c_str(), b.url.c_str(), batch, max_inflight,
              hub.url.c_str(), leaf.url.c_str(), size, m, rate, mqdr_bin.c_str(),
              bench::loadavg().c_str());
  std::vector<Result> results;
  int round = 0;
  for (std::size_t n : sizes) {
    std::vector<std::string> order;
    if (want_relay) order.push_back("relay");
    if (want_native) order.push_back("native");
    if (round++ % 2 == 1) std::reverse(order.begin(), order.end());
    for (const auto& mode : order) {
      Result r = mode == "relay"
                     ? run(mode, a, b, n, size, m, rate, sfx, work, mqdr_bin, batch, max_inflight)
                     : run(mode, hub, leaf, n, size, m, rate, sfx, work, mqdr_bin, batch, max_inflight);
      print(r);
      results.push_back(r);
    }
  }
  std::printf("\n| messages | copy | first->last | msgs/s | MiB/s | from start msgs/s | mqdr CPU s | "
              "servers CPU s | mqdr peak RSS | servers RSS growth | p50 / p99 latency | load |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : results) {
    std::printf("| %zu | %s | %.2f s | %.0f | %.1f | %.0f | %s | %.1f | %s | %s | %.1f / %.1f ms | "
                "%s |\n",
                r.n, r.restarted ? "(INVALID, server restarted)" : r.mode == "relay" ? "mqdr relay" : "native sourcing", r.copy_s, r.rate,
                r.mibps, r.rate_total,
                r.mqdr_cpu_s < 0 ? "-" : std::to_string(r.mqdr_cpu_s).substr(0, 5).c_str(),
                r.servers_cpu_s, r.mqdr_hwm_kb < 0 ? "-" : fmt_kb(r.mqdr_hwm_kb).c_str(),
                fmt_kb(r.servers_rss_delta_kb).c_str(), r.lat.p50_ms, r.lat.p99_ms, r.load.c_str());
  }
  for (std::size_t n : sizes) {
    const Result *rl = nullptr, *nv = nullptr;
    for (const auto& r : results) {
      if (r.n == n && r.mode == "relay") rl = &r;
      if (r.n == n && r.mode == "native") nv = &r;
    }
    if (rl != nullptr && nv != nullptr && rl->complete && nv->complete && !rl->restarted &&
        !nv->restarted) {
      std::printf("n=%zu ratio relay/native: throughput %.2fx (from start %.2fx), p99 latency "
                  "%.2f  [bar: >= 2x]\n",
                  n, rl->rate / nv->rate, rl->rate_total / nv->rate_total,
                  rl->lat.p99_ms / nv->lat.p99_ms);
    }
  }
  std::printf("load average at end %s\n", bench::loadavg().c_str());
  a.close();
  b.close();
  hub.close();
  leaf.close();
  nats_Close();
  return 0;
}
