// Side-by-side benchmark: mqdr's Kafka mirror (`mqdr run -c <generated config>`, a child
// process) vs Apache MirrorMaker 2 (dedicated mode, `org.apache.kafka.connect.mirror.MirrorMaker`,
// a child JVM, one task per partition) between the harness's two Kafka clusters.
//
//   kafka_bench [--records N[,N...]] [--size BYTES] [--partitions P] [--latency-records M]
//               [--latency-rate R] [--tools mqdr,mm2] [--mqdr PATH] [--mm2-classpath CP]
//               [--mm2-heap "-Xms256M -Xmx2G"] [--mm2-producer k=v,k=v] [--mm2-consumer k=v,k=v]
//               [--keep-logs DIR]
//
// MirrorMaker 2 runs with its defaults (the Connect worker's producer: linger.ms 0, batch.size
// 16 KiB, one request in flight per connection) unless --mm2-producer sets properties of its
// producers to the target (written as `<target alias>.producer.k = v`), e.g.
// --mm2-producer linger.ms=5,batch.size=1048576 for a run closer to mqdr's producer settings;
// --mm2-consumer does the same for its consumers on the source (`<source alias>.consumer.k = v`).
//
// Per size N: one source topic of P partitions on kafka-a is filled with N records of BYTES
// (round-robin over the partitions, no key, no compression) while no mover runs. Then, one tool
// after the other (the order alternates from one size to the next), the tool is started on an
// empty target and the target's high watermarks are polled every 20 ms until the target holds
// the source's whole backlog (N, plus the live records of a tool that ran before): records/s and
// MiB/s from the first to the last record on the target (and from the process start, which
// includes its start-up). The tool's CPU seconds (utime + stime of the process, all threads) are
// read when the last record arrived. Then, with the tool still running, M records are produced at
// R/s to the same source topic, each carrying its send time and a marker of this run, and read on
// the target from its end (the first second is warm-up): p50/p99 end-to-end latency. Peak RSS is
// the process's VmHWM just before it is stopped (SIGTERM). There is no second (idle) topic: the
// Java consumer does not fetch a partition that still has buffered records, so an idle partition
// of the same broker in the next fetch makes it wait fetch.max.wait.ms (500 ms) and holds MM2 to
// about 2 000 records/s per task.
// Everything created (topics on both clusters, consumer groups) carries a random suffix and is
// deleted at the end. Endpoints from MQDR_KAFKA_A / MQDR_KAFKA_B (`harness.sh env`). Not a test:
// nothing is asserted; the bar of issue 3 (2x MM2's throughput at <= 1/5 of its peak RSS) is
// printed beside the ratios.

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cinttypes>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <set>

#include "../common/bench_util.hpp"

#ifndef MQDR_BIN
#define MQDR_BIN "mqdr"
#endif
#ifndef MQDR_SOURCE_DIR
#define MQDR_SOURCE_DIR "."
#endif

using namespace std::chrono_literals;
using bench::Clock;

namespace {

std::string kafka_a, kafka_b;

rd_kafka_t* make(rd_kafka_type_t type, const std::string& bootstrap,
                 const std::vector<std::pair<std::string, std::string>>& props = {}) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      throw std::runtime_error(k + ": " + err);
    }
  };
  set("bootstrap.servers", bootstrap);
  set("log_level", "3");
  for (const auto& [k, v] : props) set(k, v);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) throw std::runtime_error(std::string("rd_kafka_new: ") + err);
  return rk;
}

// Waits for one admin result event on `q`; returns it (caller destroys) or nullptr on timeout.
rd_kafka_event_t* admin_wait(rd_kafka_queue_t* q, int timeout_ms = 60000) {
  return rd_kafka_queue_poll(q, timeout_ms);
}

void create_topic(rd_kafka_t* rk, const std::string& name, int partitions) {
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(name.c_str(), partitions, 1, err, sizeof err);
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, nullptr, q);
  rd_kafka_event_t* ev = admin_wait(q);
  std::string failure;
  if (ev == nullptr) {
    failure = "timeout";
  } else {
    const auto* res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t** tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      failure = rd_kafka_event_error_string(ev);
    } else if (cnt == 1 && rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      failure = rd_kafka_topic_result_error_string(tr[0]);
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(q);
  if (!failure.empty()) throw std::runtime_error("create topic " + name + ": " + failure);
}

std::set<std::string> list_topics(rd_kafka_t* rk) {
  const rd_kafka_metadata_t* md = nullptr;
  std::set<std::string> out;
  if (rd_kafka_metadata(rk, 1, nullptr, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) out.insert(md->topics[i].topic);
  }
  rd_kafka_metadata_destroy(md);
  return out;
}

void delete_topics(rd_kafka_t* rk, const std::vector<std::string>& names) {
  if (names.empty()) return;
  std::vector<rd_kafka_DeleteTopic_t*> dts;
  for (const auto& n : names) dts.push_back(rd_kafka_DeleteTopic_new(n.c_str()));
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_DeleteTopics(rk, dts.data(), dts.size(), nullptr, q);
  if (rd_kafka_event_t* ev = admin_wait(q)) rd_kafka_event_destroy(ev);
  rd_kafka_DeleteTopic_destroy_array(dts.data(), dts.size());
  rd_kafka_queue_destroy(q);
}

// Consumer groups whose id contains `part` (then deleted).
void delete_groups_containing(rd_kafka_t* rk, const std::string& part) {
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_ListConsumerGroups(rk, nullptr, q);
  std::vector<std::string> ids;
  if (rd_kafka_event_t* ev = admin_wait(q)) {
    if (const auto* res = rd_kafka_event_ListConsumerGroups_result(ev)) {
      size_t cnt = 0;
      const rd_kafka_ConsumerGroupListing_t** gl = rd_kafka_ListConsumerGroups_result_valid(res, &cnt);
      for (size_t i = 0; i < cnt; ++i) {
        std::string id = rd_kafka_ConsumerGroupListing_group_id(gl[i]);
        if (id.find(part) != std::string::npos) ids.push_back(id);
      }
    }
    rd_kafka_event_destroy(ev);
  }
  if (!ids.empty()) {
    std::vector<rd_kafka_DeleteGroup_t*> dg;
    for (const auto& id : ids) dg.push_back(rd_kafka_DeleteGroup_new(id.c_str()));
    rd_kafka_DeleteGroups(rk, dg.data(), dg.size(), nullptr, q);
    if (rd_kafka_event_t* ev = admin_wait(q)) rd_kafka_event_destroy(ev);
    rd_kafka_DeleteGroup_destroy_array(dg.data(), dg.size());
  }
  rd_kafka_queue_destroy(q);
}

// Sum of the high watermarks of partitions 0..P-1; a missing topic counts 0.
std::int64_t sum_hw(rd_kafka_t* rk, const std::string& topic, int partitions) {
  std::int64_t sum = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t lo = 0, hi = 0;
    if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 5000) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      sum += hi;
    }
  }
  return sum;
}

// Produces n records of `size` bytes round-robin over the partitions as fast as the producer
// goes. Returns records/s.
double fill(const std::string& topic, int partitions, std::size_t n, std::size_t size) {
  rd_kafka_t* rk = make(RD_KAFKA_PRODUCER, kafka_a,
                        {{"linger.ms", "20"}, {"batch.size", "1000000"}, {"acks", "all"},
                         {"queue.buffering.max.kbytes", "262144"}});
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  std::string body(size, 'x');
  std::mt19937_64 rng(42);
  for (auto& c : body) c = static_cast<char>('a' + rng() % 26);
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t ts = bench::now_ns();
    std::memcpy(body.data(), &ts, std::min<std::size_t>(8, size));
    while (rd_kafka_produce(t, static_cast<int32_t>(i % static_cast<std::size_t>(partitions)),
                            RD_KAFKA_MSG_F_COPY, body.data(), body.size(), nullptr, 0,
                            nullptr) != 0) {
      if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(rd_kafka_last_error()));
      }
      rd_kafka_poll(rk, 10);
    }
    rd_kafka_poll(rk, 0);
  }
  rd_kafka_flush(rk, 300000);
  const double s = bench::secs(t0, Clock::now());
  rd_kafka_topic_destroy(t);
  rd_kafka_destroy(rk);
  return static_cast<double>(n) / s;
}

// Produces m records at `rate`/s to `src_topic` on A while a consumer reads `dst_topic` on B;
// returns the end-to-end latencies (ns) of the records that arrived within the deadline.
std::vector<std::int64_t> latency(const std::string& src_topic, const std::string& dst_topic,
                                  int partitions, std::size_t m, double rate, std::size_t size) {
  std::vector<std::int64_t> lat;
  if (m == 0) return lat;
  rd_kafka_t* admin_b = make(RD_KAFKA_PRODUCER, kafka_b);
  const auto until = Clock::now() + 90s;
  while (Clock::now() < until && list_topics(admin_b).count(dst_topic) == 0) {
    std::this_thread::sleep_for(200ms);
  }
  rd_kafka_destroy(admin_b);
  rd_kafka_t* c = make(RD_KAFKA_CONSUMER, kafka_b,
                       {{"group.id", "kbench-latency-unused"}, {"enable.auto.commit", "false"},
                        {"fetch.wait.max.ms", "5"}, {"fetch.min.bytes", "1"}});
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(parts, dst_topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_END;
  }
  rd_kafka_assign(c, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  std::atomic<bool> produced{false};
  Clock::time_point produced_at{};
  // The first second's records are a warm-up (connections, the consumer's first fetches):
  // counted, not measured.
  const auto warm = static_cast<std::uint64_t>(rate);
  const std::uint64_t marker = std::random_device{}() * 0x100000001ULL + 1;
  std::thread consumer([&] {
    std::size_t got = 0;
    while (got < m) {
      if (produced.load() && Clock::now() - produced_at > 60s) break;
      rd_kafka_message_t* msg = rd_kafka_consumer_poll(c, 100);
      if (msg == nullptr) continue;
      std::uint64_t mark = 0;
      if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR && msg->len >= 24) {
        std::memcpy(&mark, static_cast<const char*>(msg->payload) + 16, 8);
      }
      if (mark == marker) {
        std::int64_t ts;
        std::uint64_t seq;
        std::memcpy(&ts, msg->payload, 8);
        std::memcpy(&seq, static_cast<const char*>(msg->payload) + 8, 8);
        ++got;
        if (seq >= warm) lat.push_back(bench::now_ns() - ts);
      }
      rd_kafka_message_destroy(msg);
    }
  });
  std::this_thread::sleep_for(1s);  // let the consumer's first fetch go out
  rd_kafka_t* p = make(RD_KAFKA_PRODUCER, kafka_a, {{"linger.ms", "0"}, {"acks", "all"}});
  rd_kafka_topic_t* t = rd_kafka_topic_new(p, src_topic.c_str(), nullptr);
  std::string body(size, 'y');
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < m; ++i) {
    std::this_thread::sleep_until(t0 + std::chrono::nanoseconds(static_cast<std::int64_t>(
                                           static_cast<double>(i) * 1e9 / rate)));
    std::int64_t ts = bench::now_ns();
    const std::uint64_t seq = i;
    std::memcpy(body.data(), &ts, 8);
    std::memcpy(body.data() + 8, &seq, 8);
    std::memcpy(body.data() + 16, &marker, 8);
    rd_kafka_produce(t, static_cast<int32_t>(i % static_cast<std::size_t>(partitions)),
                     RD_KAFKA_MSG_F_COPY, body.data(), body.size(), nullptr, 0, nullptr);
    rd_kafka_poll(p, 0);
  }
  rd_kafka_flush(p, 60000);
  produced_at = Clock::now();
  produced.store(true);
  consumer.join();
  rd_kafka_topic_destroy(t);
  rd_kafka_destroy(p);
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  return lat;
}

struct Result {
  std::string tool;
  std::size_t n = 0;
  std::int64_t copied = 0;
  std::int64_t backlog = 0;  // records on the source when the tool started
  double startup_s = -1;  // process start -> first record on the target
  double copy_s = -1;     // first -> last record on the target
  double total_s = -1;    // process start -> last record
  double rps = 0, mibps = 0, rps_total = 0;
  double cpu_s = -1;      // of the tool's process at the last record
  long hwm_kb = -1;       // VmHWM before stop
  bench::Percentiles lat;
  std::string load;
  bool complete = false;
  bool restarted = false;  // a broker's pid changed during the run: figures not comparable
};

struct Tool {
  std::string name;
  std::vector<std::string> argv;
  std::string target_topic;
};

Result run_tool(const Tool& tool, const std::string& log, std::size_t n, int partitions,
                std::size_t size, const std::string& src_topic, std::size_t m, double rate) {
  Result r;
  r.tool = tool.name;
  r.n = n;
  r.load = bench::loadavg();
  const pid_t apid = bench::harness_pid("kafka-a/node1"), bpid = bench::harness_pid("kafka-b/node1");
  rd_kafka_t* qb = make(RD_KAFKA_PRODUCER, kafka_b);
  // The backlog: the N filled records plus the live records of a tool that ran before on the
  // same source topic.
  rd_kafka_t* qa = make(RD_KAFKA_PRODUCER, kafka_a);
  const std::int64_t expected = sum_hw(qa, src_topic, partitions);
  rd_kafka_destroy(qa);
  r.backlog = expected;
  const auto t0 = Clock::now();
  pid_t pid = bench::spawn(tool.argv, log);
  Clock::time_point first{}, last{};
  bool seen_first = false;
  const auto until = t0 + std::chrono::seconds(600 + static_cast<long>(n / 1000));
  while (Clock::now() < until) {
    if (!bench::alive(pid)) {
      std::cerr << tool.name << " exited early; see " << log << "\n";
      break;
    }
    const std::int64_t got = sum_hw(qb, tool.target_topic, partitions);
    const auto now = Clock::now();
    if (got > 0 && !seen_first) {
      seen_first = true;
      first = now;
    }
    if (got >= expected) {
      last = now;
      r.copied = got;
      r.cpu_s = bench::proc_cpu_s(pid);
      r.complete = true;
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  if (r.complete) {
    r.startup_s = bench::secs(t0, first);
    r.copy_s = bench::secs(first, last);
    r.total_s = bench::secs(t0, last);
    r.rps = static_cast<double>(expected) / r.copy_s;
    r.mibps = r.rps * static_cast<double>(size) / (1024.0 * 1024.0);
    r.rps_total = static_cast<double>(expected) / r.total_s;
    r.lat = bench::percentiles(latency(src_topic, tool.target_topic, partitions, m, rate, size));
  }
  r.hwm_kb = bench::proc_status_kb(pid, "VmHWM");
  bench::stop(pid);
  r.restarted = bench::harness_pid("kafka-a/node1") != apid || bench::harness_pid("kafka-b/node1") != bpid;
  rd_kafka_destroy(qb);
  return r;
}

std::string fmt_kb(long kb) {
  if (kb < 0) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", static_cast<double>(kb) / 1024.0);
  return b;
}

void print(const Result& r) {
  std::printf(
      "%-5s n=%-8zu backlog %-8" PRId64 " copied %-8" PRId64
      " start->first %6.2f s  first->last %7.2f s  %9.0f rec/s  %7.1f MiB/s  (from process start "
      "%9.0f rec/s)  CPU %7.2f s  peak RSS %s  latency p50 %.1f ms p99 %.1f ms max %.1f ms (%zu)  "
      "load %s%s%s\n",
      r.tool.c_str(), r.n, r.backlog, r.copied, r.startup_s, r.copy_s, r.rps, r.mibps, r.rps_total, r.cpu_s,
      fmt_kb(r.hwm_kb).c_str(), r.lat.p50_ms, r.lat.p99_ms, r.lat.max_ms, r.lat.count,
      r.load.c_str(), r.complete ? "" : "  INCOMPLETE",
      r.restarted ? "  INVALID: a broker restarted during the run" : "");
  std::fflush(stdout);
}

std::vector<std::size_t> parse_sizes(const std::string& s) {
  std::vector<std::size_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoul(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes = {100000, 1000000};
  std::size_t size = 1024, m = 10000;
  double rate = 1000;
  int partitions = 4;
  std::string tools = "mqdr,mm2";
  std::string mqdr_bin = bench::env_or("MQDR_BIN", MQDR_BIN);
  std::string mm2_cp, logs_dir;
  std::string mm2_heap = "-Xms256M -Xmx2G";  // what Kafka's connect-mirror-maker.sh sets
  std::string mm2_producer;  // "k=v,k=v": <target alias>.producer.k = v (MM2's producers)
  std::string mm2_consumer;  // "k=v,k=v": <source alias>.consumer.k = v (MM2's consumers)
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--records") sizes = parse_sizes(v);
    else if (k == "--size") size = std::stoul(v);
    else if (k == "--partitions") partitions = std::stoi(v);
    else if (k == "--latency-records") m = std::stoul(v);
    else if (k == "--latency-rate") rate = std::stod(v);
    else if (k == "--tools") tools = v;
    else if (k == "--mqdr") mqdr_bin = v;
    else if (k == "--mm2-classpath") mm2_cp = v;
    else if (k == "--mm2-heap") mm2_heap = v;
    else if (k == "--mm2-producer") mm2_producer = v;
    else if (k == "--mm2-consumer") mm2_consumer = v;
    else if (k == "--keep-logs") logs_dir = v;
    else {
      std::cerr << "usage: kafka_bench [--records N[,N...]] [--size BYTES] [--partitions P] "
                   "[--latency-records M] [--latency-rate R] [--tools mqdr,mm2] [--mqdr PATH] "
                   "[--mm2-classpath CP] [--mm2-heap OPTS] [--mm2-producer k=v,k=v] [--mm2-consumer k=v,k=v] [--keep-logs DIR]\n";
      return 2;
    }
  }
  if (size < 24) size = 24;
  kafka_a = bench::env_or("MQDR_KAFKA_A", "127.0.0.1:19092");
  kafka_b = bench::env_or("MQDR_KAFKA_B", "127.0.0.1:29092");
  const bool want_mqdr = tools.find("mqdr") != std::string::npos;
  const bool want_mm2 = tools.find("mm2") != std::string::npos;
  if (want_mm2 && mm2_cp.empty()) {
    mm2_cp = bench::shell_line(std::string(MQDR_SOURCE_DIR) +
                               "/tests/harness/harness.sh classpath mirror");
    if (mm2_cp.empty()) {
      std::cerr << "no MirrorMaker 2 classpath (tests/harness/harness.sh fetch-bench)\n";
      return 1;
    }
  }
  std::random_device rd;
  char sfxb[16];
  std::snprintf(sfxb, sizeof sfxb, "%08x", rd());
  const std::string sfx = sfxb;
  const std::string work = logs_dir.empty() ? "/tmp/mqdr-kbench-" + sfx : logs_dir;
  std::filesystem::create_directories(work);

  std::printf("kafka_bench %s: %s -> %s, records of %zu B, %d partitions, latency %zu records at "
              "%.0f/s; mqdr %s; MM2 heap %s, producer overrides '%s', consumer overrides '%s'; work dir %s; load average at start "
              "%s\n",
              bench::utc_now().c_str(), kafka_a.c_str(), kafka_b.c_str(), size, partitions, m,
              rate, mqdr_bin.c_str(), mm2_heap.c_str(), mm2_producer.c_str(), mm2_consumer.c_str(), work.c_str(), bench::loadavg().c_str());

  rd_kafka_t* admin_a = make(RD_KAFKA_PRODUCER, kafka_a);
  rd_kafka_t* admin_b = make(RD_KAFKA_PRODUCER, kafka_b);
  const bool heartbeats_a = list_topics(admin_a).count("heartbeats") > 0;
  const bool heartbeats_b = list_topics(admin_b).count("heartbeats") > 0;
  std::vector<Result> results;
  int round = 0;
  for (std::size_t n : sizes) {
    const std::string tag = sfx + "-n" + std::to_string(n);
    const std::string src = "kbench-" + tag;
    create_topic(admin_a, src, partitions);
    const double fill_rps = fill(src, partitions, n, size);
    std::printf("filled %s with %zu records: producer %.0f rec/s, %.1f MiB/s\n", src.c_str(), n,
                fill_rps, fill_rps * static_cast<double>(size) / 1048576.0);
    std::vector<Tool> order;
    if (want_mqdr) {
      const std::string mirror = "kb" + sfx + "n" + std::to_string(n);
      const std::string dir = work + "/" + mirror;
      std::filesystem::create_directories(dir + "/state");
      std::ofstream(dir + "/mqdr.yaml")
          << "version: 1\n"
          << "daemon:\n  state_dir: " << dir << "/state\n"
          << "  admin: { listen: '127.0.0.1:" << bench::free_port() << "' }\n"
          << "  log: { level: warn, format: text }\n  shutdown_timeout: 15s\n"
          << "clusters:\n  bench-src: { kind: kafka, bootstrap_servers: '" << kafka_a << "' }\n"
          << "  bench-dst: { kind: kafka, bootstrap_servers: '" << kafka_b << "' }\n"
          << "mirrors:\n  - name: " << mirror << "\n    source: bench-src\n    target: bench-dst\n"
          << "    topics: ['" << src << "']\n    rename: '{topic}'\n"
          << "    delivery: at_least_once\n    heartbeat_interval: 0\n";
      order.push_back({"mqdr", {mqdr_bin, "run", "-c", dir + "/mqdr.yaml"}, src});
    }
    if (want_mm2) {
      const std::string sa = "ks" + sfx + "n" + std::to_string(n);
      const std::string da = "kd" + sfx + "n" + std::to_string(n);
      const std::string dir = work + "/" + sa;
      std::filesystem::create_directories(dir);
      std::ofstream(dir + "/log4j.properties")
          << "log4j.rootLogger=WARN, stdout\n"
          << "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
          << "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
          << "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n";
      std::ofstream(dir + "/mm2.properties")
          << "clusters = " << sa << ", " << da << "\n"
          << sa << ".bootstrap.servers = " << kafka_a << "\n"
          << da << ".bootstrap.servers = " << kafka_b << "\n"
          << sa << "->" << da << ".enabled = true\n"
          << da << "->" << sa << ".enabled = false\n"
          << sa << "->" << da << ".topics = " << src << "\n"
          << "tasks.max = " << partitions << "\n"
          << "replication.factor = 1\n"
          << "offset-syncs.topic.replication.factor = 1\n"
          << "checkpoints.topic.replication.factor = 1\n"
          << "heartbeats.topic.replication.factor = 1\n"
          << "config.storage.replication.factor = 1\n"
          << "offset.storage.replication.factor = 1\n"
          << "status.storage.replication.factor = 1\n"
          << "emit.heartbeats.enabled = false\n"
          << "emit.checkpoints.enabled = false\n"
          << "sync.group.offsets.enabled = false\n"
          << "sync.topic.acls.enabled = false\n"
          << "refresh.groups.enabled = false\n";
      {
        std::ofstream extra(dir + "/mm2.properties", std::ios::app);
        for (const auto& [list, prefix] : {std::pair{mm2_producer, da + ".producer."},
                                           std::pair{mm2_consumer, sa + ".consumer."}}) {
          std::stringstream ps(list);
          std::string kv;
          while (std::getline(ps, kv, ',')) {
            const auto eq = kv.find('=');
            if (eq != std::string::npos) {
              extra << prefix << kv.substr(0, eq) << " = " << kv.substr(eq + 1) << "\n";
            }
          }
        }
      }
      std::vector<std::string> av = {"java"};
      std::stringstream hs(mm2_heap);
      std::string h;
      while (hs >> h) av.push_back(h);
      for (const std::string& a :
           {std::string("-XX:+UseG1GC"), std::string("-Djava.awt.headless=true"),
            "-Dlog4j.configuration=file:" + dir + "/log4j.properties", std::string("-cp"), mm2_cp,
            std::string("org.apache.kafka.connect.mirror.MirrorMaker"), dir + "/mm2.properties",
            std::string("--clusters"), da}) {
        av.push_back(a);
      }
      order.push_back({"mm2", av, sa + "." + src});
    }
    if (round++ % 2 == 1) std::reverse(order.begin(), order.end());
    for (const auto& t : order) {
      Result r = run_tool(t, work + "/" + t.name + "-n" + std::to_string(n) + ".log", n,
                          partitions, size, src, m, rate);
      print(r);
      results.push_back(r);
      // Free the target's disk before the next run.
      std::vector<std::string> drop;
      for (const auto& name : list_topics(admin_b)) {
        if (name.find(sfx) != std::string::npos) drop.push_back(name);
      }
      delete_topics(admin_b, drop);
    }
    std::vector<std::string> drop;
    for (const auto& name : list_topics(admin_a)) {
      if (name.find(sfx) != std::string::npos) drop.push_back(name);
    }
    delete_topics(admin_a, drop);
  }
  // Clean up: groups, MM2's heartbeats topics when this run created them.
  delete_groups_containing(admin_a, sfx);
  delete_groups_containing(admin_b, sfx);
  if (!heartbeats_a && list_topics(admin_a).count("heartbeats") > 0) delete_topics(admin_a, {"heartbeats"});
  if (!heartbeats_b && list_topics(admin_b).count("heartbeats") > 0) delete_topics(admin_b, {"heartbeats"});
  rd_kafka_destroy(admin_a);
  rd_kafka_destroy(admin_b);

  std::printf("\n| records | tool | first->last | rec/s | MiB/s | start->last rec/s | CPU s | "
              "peak RSS | p50 / p99 latency | load |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : results) {
    std::printf("| %zu | %s | %.2f s | %.0f | %.1f | %.0f | %.1f | %s | %.1f / %.1f ms | %s |\n",
                r.n, r.restarted ? "(INVALID, broker restarted)" : r.tool == "mm2" ? "MirrorMaker 2" : "mqdr", r.copy_s, r.rps, r.mibps,
                r.rps_total, r.cpu_s, fmt_kb(r.hwm_kb).c_str(), r.lat.p50_ms, r.lat.p99_ms,
                r.load.c_str());
  }
  for (std::size_t n : sizes) {
    const Result *q = nullptr, *k = nullptr;
    for (const auto& r : results) {
      if (r.n == n && r.tool == "mqdr") q = &r;
      if (r.n == n && r.tool == "mm2") k = &r;
    }
    if (q != nullptr && k != nullptr && q->complete && k->complete && !q->restarted &&
        !k->restarted) {
      std::printf("n=%zu ratios mqdr/MM2: throughput %.2fx (from process start %.2fx), peak RSS "
                  "%.3f (1/%.1f), CPU s %.2f, p99 latency %.2f  [bar: >= 2x throughput at <= 1/5 "
                  "RSS]\n",
                  n, q->rps / k->rps, q->rps_total / k->rps_total,
                  static_cast<double>(q->hwm_kb) / static_cast<double>(k->hwm_kb),
                  static_cast<double>(k->hwm_kb) / static_cast<double>(q->hwm_kb),
                  q->cpu_s / k->cpu_s, q->lat.p99_ms / k->lat.p99_ms);
    }
  }
  std::printf("load average at end %s\n", bench::loadavg().c_str());
  return 0;
}
