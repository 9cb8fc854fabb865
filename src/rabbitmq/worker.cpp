#include "rabbitmq/worker.hpp"

#include <condition_variable>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "mqdr/pipeline.hpp"
#include "rabbitmq/capture.hpp"
#include "rabbitmq/definitions.hpp"
#include "rabbitmq/drill.hpp"
#include "rabbitmq/management.hpp"
#include "rabbitmq/source.hpp"
#include "rabbitmq/standby.hpp"

namespace mqdr::rabbitmq {

namespace {
using Clock = std::chrono::steady_clock;

// Sleeps up to `d`, returns false as soon as `stop` is requested.
bool sleep_for(std::stop_token stop, Duration d) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  return !cv.wait_for(lock, stop, d, [] { return false; }) && !stop.stop_requested();
}

constexpr Duration kHttpTimeout{std::chrono::seconds(10)};
}  // namespace

MirrorWorker::MirrorWorker(MirrorContext ctx, WorkerOptions options)
    : ctx_(std::move(ctx)), options_(options), counters_(std::make_shared<SinkCounters>()) {}

MirrorWorker::~MirrorWorker() = default;

nlohmann::json MirrorWorker::detail() const {
  std::lock_guard lock(mu_);
  return {{"capture", capture_},
          {"capture_alarm", alarm_},
          {"definitions", definitions_},
          {"standby", standby_},
          {"published", counters_->published.load()},
          {"nacked", counters_->nacked.load()},
          {"returned", counters_->returned.load()},
          {"parked", counters_->parked.load()}};
}

void MirrorWorker::publish_detail() {
  if (ctx_.stats) ctx_.stats->set_detail(detail());
}

Status MirrorWorker::run(std::stop_token stop) {
  Duration backoff{1000};
  while (!stop.stop_requested()) {
    if (ctx_.stats) ctx_.stats->set_state("starting");
    const auto started = Clock::now();
    Status st = run_once(stop);
    if (stop.stop_requested()) break;
    if (st.is_ok()) st = Status::retry("pipeline ended unexpectedly");
    if (ctx_.stats) ctx_.stats->set_error(st.message());
    if (st.is_fatal()) {
      spdlog::error("mirror={} stopped: {}", ctx_.mirror.name, st.message());
      if (ctx_.stats) ctx_.stats->set_state("failed");
      return st;
    }
    if (Clock::now() - started > std::chrono::minutes(1)) backoff = Duration(1000);
    spdlog::warn("mirror={} {}; retrying in {} ms", ctx_.mirror.name, st.message(),
                 backoff.count());
    if (ctx_.stats) ctx_.stats->set_state("backoff");
    if (!sleep_for(stop, backoff)) break;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  if (ctx_.stats) ctx_.stats->set_state("stopped");
  return Status::ok();
}

Status MirrorWorker::run_once(std::stop_token stop) {
  const auto& m = ctx_.mirror;
  const auto& rc = m.rabbitmq;
  auto src_mgmt = std::make_unique<Management>(ctx_.source, kHttpTimeout);
  auto dst_mgmt = std::make_unique<Management>(ctx_.target, kHttpTimeout);

  // 1. Definitions first, so that the first messages find their queues on the target.
  std::unique_ptr<DefinitionsSync> defs;
  if (rc.sync_definitions) {
    if (src_mgmt->configured() && dst_mgmt->configured()) {
      defs = std::make_unique<DefinitionsSync>(m.name, *src_mgmt, *dst_mgmt);
      DefinitionsReport report;
      Status st = defs->run(report);
      if (!st.is_ok()) return st;
      std::lock_guard lock(mu_);
      definitions_ = report.to_json();
    } else {
      std::lock_guard lock(mu_);
      definitions_ = {{"disabled", "sync_definitions needs management_uri on both clusters"}};
    }
  }

  // 2. Capture queues on the source.
  std::vector<ConsumeSpec> specs;
  {
    Connection setup(ctx_.source, fmt::format("mirror {} setup", m.name));
    Status st = setup.open(Duration(10000));
    if (!st.is_ok()) return st;
    std::vector<CaptureState> captures;
    st = ensure_capture(setup, *src_mgmt, m, captures);
    if (!st.is_ok()) return st;
    for (const auto& c : captures) specs.push_back(ConsumeSpec{c.queue, c.exchange, false});
    for (const auto& q : rc.queues) specs.push_back(ConsumeSpec{q, q, true});
  }
  if (specs.empty()) {
    return Status::fatal(fmt::format("mirror '{}' names no exchanges and no queues", m.name));
  }

  // 3. Source and sink.
  SourceOptions so;
  so.mirror = m.name;
  so.queues = specs;
  so.prefetch = rc.prefetch;
  so.skip_origin = ctx_.target.name;
  AmqpSource source(ctx_.source, so);
  SinkOptions sk;
  sk.mirror = m.name;
  sk.origin = ctx_.source.name;
  sk.shovel_exchange = rc.shovel_exchange;
  sk.counters = counters_;
  sk.max_outstanding = static_cast<std::size_t>(rc.prefetch) * specs.size() + 1000;
  ConfirmSink sink(ctx_.target, sk);
  sink.wake_on(&source.connection());
  if (Status st = sink.open(); !st.is_ok()) return st;
  if (Status st = source.open(); !st.is_ok()) return st;

  if (ctx_.stats) {
    ctx_.stats->set_state("running");
    ctx_.stats->clear_error();
  }
  spdlog::info("mirror={} running: {} -> {}, {} exchange(s), {} queue(s)", m.name,
               ctx_.source.name, ctx_.target.name, rc.exchanges.size(), rc.queues.size());

  // 4. Housekeeping beside the data path.
  std::jthread side([this, d = std::move(defs), s = std::move(src_mgmt),
                     t = std::move(dst_mgmt)](std::stop_token st) mutable {
    housekeeping(st, std::move(d), std::move(s), std::move(t));
  });

  PipelineOptions po;
  po.batch_max = static_cast<std::size_t>(std::max(rc.prefetch, 1));
  po.max_inflight_records = static_cast<std::size_t>(rc.prefetch) * specs.size() + 1000;
  Pipeline pipeline(source, sink, po, ctx_.stats.get());
  Status st = pipeline.run(stop);
  side.request_stop();
  side.join();
  source.close();
  sink.close();
  return st;
}

void MirrorWorker::housekeeping(std::stop_token stop, std::unique_ptr<DefinitionsSync> defs,
                                std::unique_ptr<Management> src_mgmt,
                                std::unique_ptr<Management> dst_mgmt) {
  // `defs` refers to both management clients: they live as long as this thread.
  (void)dst_mgmt;
  const auto& m = ctx_.mirror;
  const auto& rc = m.rabbitmq;
  Connection src(ctx_.source, fmt::format("mirror {} housekeeping", m.name));
  Connection dst(ctx_.target, fmt::format("mirror {} housekeeping", m.name));
  StandbyTrimmer trimmer(m.name, ctx_.state_dir, rc.standby_margin);
  (void)trimmer.load();
  auto last_defs = Clock::now();
  const auto tick = std::min(options_.housekeeping_interval, rc.refresh_interval);
  while (sleep_for(stop, tick)) {
    try {
      if (!src.is_open() && !src.open(Duration(5000)).is_ok()) continue;
      if (!dst.is_open() && !dst.open(Duration(5000)).is_ok()) continue;

      if (defs && Clock::now() - last_defs >= rc.refresh_interval) {
        last_defs = Clock::now();
        DefinitionsReport report;
        if (Status st = defs->run(report); !st.is_ok()) {
          spdlog::warn("mirror={} definitions sync: {}", m.name, st.message());
        } else {
          std::lock_guard lock(mu_);
          definitions_ = report.to_json();
        }
      }

      // Direct exchanges: follow their routing keys.
      std::vector<CaptureState> captures;
      if (Status st = ensure_capture(src, *src_mgmt, m, captures); !st.is_ok()) {
        spdlog::warn("mirror={} capture refresh: {}", m.name, st.message());
      }

      // Capture queue sizes and the alarm.
      if (src_mgmt->configured()) {
        auto cap = nlohmann::json::object();
        bool alarm = false;
        for (const auto& ex : rc.exchanges) {
          const std::string q = capture_queue_name(m.name, ex);
          nlohmann::json info;
          if (!src_mgmt->get(fmt::format("/api/queues/{}/{}", src_mgmt->vhost(), Management::enc(q)),
                             info)
                   .is_ok()) {
            continue;
          }
          const auto bytes = info.value("message_bytes", std::int64_t{0});
          const double ratio =
              rc.capture_max_length_bytes > 0
                  ? static_cast<double>(bytes) / static_cast<double>(rc.capture_max_length_bytes)
                  : 0.0;
          const bool full = ratio >= rc.capture_alarm_ratio;
          alarm = alarm || full;
          cap[ex] = {{"queue", q},
                     {"messages", info.value("messages", std::int64_t{0})},
                     {"bytes", bytes},
                     {"max_bytes", rc.capture_max_length_bytes},
                     {"fill_ratio", ratio},
                     {"alarm", full}};
        }
        bool raised = false;
        {
          std::lock_guard lock(mu_);
          raised = alarm && !alarm_;
          alarm_ = alarm;
          capture_ = cap;
        }
        if (raised) {
          const std::string msg = fmt::format(
              "capture queue above {:.0f}% of capture_max_length_bytes on cluster '{}': the "
              "mirror is not keeping up; at 100% the oldest captured messages are dropped",
              rc.capture_alarm_ratio * 100, ctx_.source.name);
          spdlog::error("mirror={} {}", m.name, msg);
          if (ctx_.stats) ctx_.stats->set_error(msg);
        }
      }

      // Standby depths (needs the bindings, hence the management API): always sampled and
      // persisted for promotion; trimmed as we go unless disabled.
      nlohmann::json bindings;
      if (!rc.exchanges.empty() && src_mgmt->configured() &&
          src_mgmt->get("/api/bindings/" + src_mgmt->vhost(), bindings).is_ok()) {
        auto queues = reachable_queues(bindings, trimmed_exchanges(rc.exchanges));
        const auto mode =
            options_.trim_standby ? StandbyTrimmer::Mode::trim : StandbyTrimmer::Mode::sample;
        if (Status st = trimmer.run(queues, &src, src_mgmt.get(), dst, mode, Duration(30000));
            !st.is_ok()) {
          spdlog::warn("mirror={} standby trim: {}", m.name, st.message());
        }
        std::lock_guard lock(mu_);
        standby_ = trimmer.to_json();
      }
      publish_detail();
    } catch (const std::exception& e) {
      spdlog::error("mirror={} housekeeping: {}", m.name, e.what());
    }
  }
}

}  // namespace mqdr::rabbitmq
