// backup_bench: fills one cluster of the harness per kind with N records of SIZE bytes, then
// measures, in the same run and on the same data,
//   - the plain read rate of the broker's own tool: kcat -C for Kafka; for NATS (no `nats` CLI on
//     Debian) an ack-less ordered read with the cnats client; for RabbitMQ the definitions export
//     of the management API (topology);
//   - `mqdr backup` (full), `mqdr verify --backup` and `mqdr restore` into the other cluster, in
//     process with the same engine the CLI uses;
// and prints records/s, MB/s (record bytes) and the compression ratio (record bytes / bytes on
// disk). What it created on the harness clusters is deleted at the end (`--kinds none --tag T`
// deletes what a run with tag T left). Usage: backup_bench [--kinds kafka,nats,rabbitmq] [--records N] [--size BYTES] [--dir DIR] [--tag T]
// The data: printable text, half random, half repeated (so that zstd has something to find).
#include <amqp.h>
#include <librdkafka/rdkafka.h>
#include <nats/nats.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>

#include "kafka/rd.hpp"
#include "mqdr/backup.hpp"
#include "mqdr/config_loader.hpp"
#include "nats/client.hpp"
#include "nats/reader.hpp"
#include "rabbitmq/connection.hpp"
#include "tests/harness/endpoints.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace mqdr;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string payload(std::mt19937_64& rng, std::size_t size, std::uint64_t i) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string s = fmt::format("{{\"i\":{},\"d\":\"", i);
  while (s.size() < size / 2) s.push_back(alphabet[rng() % 62]);
  while (s.size() < size) s += "order-line;";
  s.resize(size);
  return s;
}

struct Row {
  std::string kind, what;
  std::uint64_t records = 0;
  double bytes = 0, seconds = 0;
  std::string note;
};
std::vector<Row> rows;

void add(Row r) {
  std::cout << fmt::format("{:9} {:28} {:>9} rec {:>8.2f} s {:>10.0f} rec/s {:>8.1f} MB/s  {}\n", r.kind, r.what,
                           r.records, r.seconds, r.records / r.seconds, r.bytes / r.seconds / 1e6, r.note)
            << std::flush;
  rows.push_back(std::move(r));
}

// One engine run of each: backup (full), verify, restore into `to`.
void engine(const Config& cfg, const std::string& kind, const std::string& plan_name, const std::string& to,
            const backup::Renames& renames) {
  const BackupPlanConfig& plan = *cfg.plan(plan_name);
  const ClusterConfig& from = *cfg.cluster(plan.cluster);
  backup::Progress p;
  auto reader = backup::make_reader(plan, from);
  auto t0 = Clock::now();
  const backup::BackupResult b = backup::take_backup(plan, from, true, *reader, &p);
  add({kind, "mqdr backup (full)", b.records, static_cast<double>(b.raw_bytes), since(t0),
       fmt::format("{:.1f} MB -> {:.1f} MB on disk, ratio {:.2f}", b.raw_bytes / 1e6, b.bytes / 1e6,
                   static_cast<double>(b.raw_bytes) / static_cast<double>(std::max<std::uint64_t>(1, b.bytes)))});
  t0 = Clock::now();
  const backup::VerifyReport v = backup::verify_backup(b.dir);
  add({kind, "mqdr verify --backup", v.records, static_cast<double>(b.raw_bytes), since(t0), v.ok ? "ok" : v.problem});
  auto target = backup::make_target(*cfg.cluster(to));
  backup::RestoreOptions o;
  o.backup_dir = b.dir;
  o.renames = renames;
  o.checkpoint = plan.dir / ("restore-" + plan_name + ".json");
  t0 = Clock::now();
  const backup::RestoreResult r = backup::restore(o, *target, nullptr);
  add({kind, "mqdr restore", r.records, static_cast<double>(b.raw_bytes), since(t0), "into " + to});
}

void bench_kafka(const Config& cfg, const std::string& topic, std::uint64_t n, std::size_t size) {
  const ClusterConfig& a = *cfg.cluster("kafka-a");
  kafka::ClientLabel label{"bench"};
  auto rk = kafka::make_client(RD_KAFKA_PRODUCER,
                               kafka::make_conf(a, {{"acks", "all"}, {"linger.ms", "20"}, {"batch.size", "1000000"}}, {}, &label));
  kafka::create_topics(rk.get(), {kafka::NewTopicSpec{topic, 4, {}}}, 30000);
  std::mt19937_64 rng(42);
  auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::string v = payload(rng, size, i);
    const std::string k = fmt::format("key-{}", i);
    while (rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(static_cast<int>(i % 4)),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(k.data(), k.size()),
                             RD_KAFKA_V_VALUE(const_cast<char*>(v.data()), v.size()), RD_KAFKA_V_END) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk.get(), 10);
    }
    rd_kafka_poll(rk.get(), 0);
  }
  rd_kafka_flush(rk.get(), 600000);
  add({"kafka", "fill (librdkafka producer)", n, static_cast<double>(n * size), since(t0), ""});
  t0 = Clock::now();
  const std::string cmd = fmt::format("kcat -C -b {} -t {} -o beginning -e -q > /dev/null", a.kafka.bootstrap_servers, topic);
  const int rc = std::system(cmd.c_str());
  add({"kafka", "kcat -C (plain read)", n, static_cast<double>(n * size), since(t0), rc == 0 ? "" : "kcat failed"});
  engine(cfg, "kafka", "bench-kafka", "kafka-b", {{topic, topic + "-restored"}});
}

void bench_nats(const Config& cfg, const std::string& stream, std::uint64_t n, std::size_t size) {
  const ClusterConfig& a = *cfg.cluster("nats-a");
  nats::ensure_library();
  nats::Connection conn;
  nats::Ptr<jsCtx> js;
  if (!conn.connect(a, "bench", Duration(10000)).is_ok() || !conn.jetstream(a, Duration(30000), js).is_ok()) {
    throw std::runtime_error("nats-a not reachable");
  }
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = stream.c_str();
  const std::string subj = stream + ".>";
  const char* subjects[] = {subj.c_str()};
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  jsErrCode code{};
  if (js_AddStream(&si, js.get(), &sc, nullptr, &code) != NATS_OK) throw std::runtime_error("add stream");
  jsStreamInfo_Destroy(si);
  std::mt19937_64 rng(42);
  const std::string subject = stream + ".orders";
  auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::string v = payload(rng, size, i);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    if (js_PublishAsync(js.get(), subject.c_str(), v.data(), static_cast<int>(v.size()), &po) != NATS_OK) {
      throw std::runtime_error("publish");
    }
    if (i % 10000 == 9999) js_PublishAsyncComplete(js.get(), &po);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 600000;
  js_PublishAsyncComplete(js.get(), &po);
  add({"nats", "fill (cnats async publish)", n, static_cast<double>(n * size), since(t0), ""});
  t0 = Clock::now();
  {
    nats::StreamReader reader(conn.get(), a, js.get(), stream);
    if (!reader.open(1).is_ok()) throw std::runtime_error("reader");
    std::uint64_t got = 0;
    std::vector<nats::StoredMessage> out;
    while (got < n) {
      out.clear();
      if (!reader.next(out, 1000, Duration(2000)).is_ok() || out.empty()) break;
      got += out.size();
    }
    add({"nats", "cnats ordered read (plain)", got, static_cast<double>(got * size), since(t0),
         "no `nats` CLI on Debian"});
  }
  engine(cfg, "nats", "bench-nats", "nats-b", {});
}

void bench_rabbit(const Config& cfg, const std::string& queue, std::uint64_t n, std::size_t size) {
  const ClusterConfig& a = *cfg.cluster("rabbit-a");
  rabbitmq::Connection conn(a, "bench");
  if (!conn.open(Duration(10000), 0).is_ok() || !conn.open_channel(1).is_ok()) throw std::runtime_error("rabbit-a");
  amqp_queue_declare(conn.state(), 1, rabbitmq::bytes_of(queue), 0, 1, 0, 0, amqp_empty_table);
  std::mt19937_64 rng(42);
  amqp_basic_properties_t p{};
  p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  p.delivery_mode = 2;
  p.content_type = amqp_cstring_bytes("application/json");
  auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::string v = payload(rng, size, i);
    amqp_basic_publish(conn.state(), 1, amqp_empty_bytes, rabbitmq::bytes_of(queue), 0, 0, &p, rabbitmq::bytes_of(v));
  }
  std::optional<rabbitmq::QueueCounts> counts;
  do {
    (void)conn.queue_counts(1, queue, counts);
  } while (!counts || counts->messages < n);
  add({"rabbitmq", "fill (rabbitmq-c publish)", n, static_cast<double>(n * size), since(t0), ""});
  t0 = Clock::now();
  httplib::Client http(a.rabbitmq.management_uri);
  http.set_basic_auth(a.rabbitmq.user, a.rabbitmq.password.reveal());
  auto res = http.Get("/api/definitions");
  add({"rabbitmq", "definitions export (topology)", 1, res ? static_cast<double>(res->body.size()) : 0, since(t0),
       res ? fmt::format("{} bytes of JSON", res->body.size()) : "failed"});
  engine(cfg, "rabbitmq", "bench-rabbit", "rabbit-b", {{queue, queue + ".restored"}});
}

void cleanup(const Config& cfg, const std::string& topic, const std::string& stream, const std::string& queue) {
  for (const char* name : {"kafka-a", "kafka-b"}) {
    try {
      kafka::ClientLabel label{"bench cleanup"};
      auto rk = kafka::make_client(RD_KAFKA_PRODUCER, kafka::make_conf(*cfg.cluster(name), {}, {}, &label));
      for (const std::string& t : {topic, topic + "-restored"}) {
        rd_kafka_DeleteTopic_t* dt = rd_kafka_DeleteTopic_new(t.c_str());
        rd_kafka_queue_t* q = rd_kafka_queue_new(rk.get());
        rd_kafka_DeleteTopics(rk.get(), &dt, 1, nullptr, q);
        if (rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000)) rd_kafka_event_destroy(ev);
        rd_kafka_DeleteTopic_destroy(dt);
        rd_kafka_queue_destroy(q);
      }
    } catch (const std::exception&) {
    }
  }
  for (const char* name : {"nats-a", "nats-b"}) {
    nats::Connection conn;
    nats::Ptr<jsCtx> js;
    if (conn.connect(*cfg.cluster(name), "bench cleanup", Duration(5000)).is_ok() &&
        conn.jetstream(*cfg.cluster(name), Duration(10000), js).is_ok()) {
      jsErrCode code{};
      js_DeleteStream(js.get(), stream.c_str(), nullptr, &code);
    }
  }
  for (const char* name : {"rabbit-a", "rabbit-b"}) {
    rabbitmq::Connection conn(*cfg.cluster(name), "bench cleanup");
    if (!conn.open(Duration(10000), 0).is_ok() || !conn.open_channel(1).is_ok()) continue;
    for (const std::string& q : {queue, queue + ".restored"}) {
      amqp_queue_delete(conn.state(), 1, rabbitmq::bytes_of(q), 0, 0);
      if (!conn.check(amqp_get_rpc_reply(conn.state()), "delete", 1).is_ok()) (void)conn.open_channel(1);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string kinds = "kafka,nats,rabbitmq";
  std::uint64_t n = 100000;
  std::size_t size = 1024;
  fs::path dir = fs::temp_directory_path() / "mqdr-backup-bench";
  std::mt19937_64 rng(std::random_device{}());
  std::string tag = fmt::format("{:06x}", rng() & 0xffffff);  // --tag: names of an earlier run
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--kinds") kinds = argv[i + 1];
    else if (a == "--records") n = std::stoull(argv[i + 1]);
    else if (a == "--size") size = std::stoul(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--tag") tag = argv[i + 1];
    else {
      std::cerr << "usage: backup_bench [--kinds kafka,nats,rabbitmq] [--records N] [--size BYTES] [--dir DIR] [--tag T]\n";
      return 2;
    }
  }
  const auto& ep = mqdr::test::Endpoints::get();
  const std::string topic = "bench-backup-" + tag, stream = "BENCHBK" + tag, queue = "bench.backup." + tag;
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path file = dir / "bench.yaml";
  {
    std::ofstream out(file);
    out << "version: 1\ndaemon: { state_dir: " << (dir / "state").string() << " }\nclusters:\n"
        << "  kafka-a: { kind: kafka, bootstrap_servers: '" << ep.kafka_a << "' }\n"
        << "  kafka-b: { kind: kafka, bootstrap_servers: '" << ep.kafka_b << "' }\n"
        << "  nats-a: { kind: nats, servers: ['" << ep.nats_a << "'] }\n"
        << "  nats-b: { kind: nats, servers: ['" << ep.nats_b << "'] }\n"
        << "  rabbit-a: { kind: rabbitmq, uri: '" << ep.rabbit_a << "', management_uri: '" << ep.rabbit_a_mgmt << "' }\n"
        << "  rabbit-b: { kind: rabbitmq, uri: '" << ep.rabbit_b << "', management_uri: '" << ep.rabbit_b_mgmt << "' }\n"
        << "backups:\n"
        << "  - { name: bench-kafka, cluster: kafka-a, topics: ['" << topic << "'], dir: " << dir.string() << " }\n"
        << "  - { name: bench-nats, cluster: nats-a, streams: ['" << stream << "'], dir: " << dir.string() << " }\n"
        << "  - { name: bench-rabbit, cluster: rabbit-a, queues: ['" << queue << "'], dir: " << dir.string() << " }\n";
  }
  Config cfg;
  try {
    cfg = config::load(file.string());
  } catch (const config::Error& e) {
    for (const auto& p : e.problems()) std::cerr << p.str() << "\n";
    return 2;
  }
  std::cout << fmt::format("backup_bench: {} records of {} bytes per kind\n", n, size);
  int rc = 0;
  try {
    if (kinds.find("kafka") != std::string::npos) bench_kafka(cfg, topic, n, size);
    if (kinds.find("nats") != std::string::npos) bench_nats(cfg, stream, n, size);
    if (kinds.find("rabbitmq") != std::string::npos) bench_rabbit(cfg, queue, n, size);
  } catch (const std::exception& e) {
    std::cerr << "backup_bench: " << e.what() << "\n";
    rc = 1;
  }
  cleanup(cfg, topic, stream, queue);
  fs::remove_all(dir);
  return rc;
}
