#include "rabbitmq/ops.hpp"

#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "rabbitmq/capture.hpp"
#include "rabbitmq/connection.hpp"
#include "rabbitmq/definitions.hpp"
#include "rabbitmq/drill.hpp"
#include "rabbitmq/management.hpp"
#include "rabbitmq/standby.hpp"

namespace mqdr::rabbitmq {

namespace {
using Clock = std::chrono::steady_clock;
constexpr amqp_channel_t kOps = 1;

Duration left(Clock::time_point until) {
  return std::max(Duration(1), std::chrono::duration_cast<Duration>(until - Clock::now()));
}

class RabbitProbe : public Probe {
 public:
  explicit RabbitProbe(const ClusterConfig& cluster)
      : conn_(cluster, "probe"), mgmt_(cluster, Duration(2000)) {}

  ProbeResult check(Duration timeout) override {
    ProbeResult r;
    const auto start = Clock::now();
    const auto until = start + timeout;
    if (!conn_.is_open()) {
      Status st = conn_.open(timeout, 0);
      if (st.is_ok()) st = conn_.open_channel(kOps);
      if (!st.is_ok()) {
        r.message = st.message();
        conn_.close();
        return r;
      }
    }
    bool exists = false;
    Status st = conn_.exchange_exists(kOps, "amq.direct", exists);
    if (!st.is_ok() || !exists) {
      r.message = st.is_ok() ? "amq.direct missing" : st.message();
      conn_.close();
      return r;
    }
    if (mgmt_.configured()) {
      nlohmann::json alive;
      (void)left(until);
      st = mgmt_.get("/api/aliveness-test/" + mgmt_.vhost(), alive);
      if (!st.is_ok() || alive.value("status", "") != "ok") {
        r.message = st.is_ok() ? "aliveness test failed" : st.message();
        return r;
      }
    }
    r.ok = true;
    r.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    return r;
  }

 private:
  Connection conn_;
  Management mgmt_;
};

class RabbitMirrorOps : public MirrorOps {
 public:
  explicit RabbitMirrorOps(MirrorContext ctx) : ctx_(std::move(ctx)) {}

  // Queues on the source that hold what is not mirrored yet.
  std::vector<std::string> pending_queues() const {
    std::vector<std::string> out;
    for (const auto& ex : ctx_.mirror.rabbitmq.exchanges) {
      out.push_back(capture_queue_name(ctx_.mirror.name, ex));
    }
    for (const auto& q : ctx_.mirror.rabbitmq.queues) out.push_back(q);
    return out;
  }

  Status depths(Duration timeout, nlohmann::json& out, std::int64_t& total) {
    total = 0;
    out = nlohmann::json::object();
    Connection conn(ctx_.source, fmt::format("mirror {} ops", ctx_.mirror.name));
    Status st = conn.open(timeout, 0);
    if (st.is_ok()) st = conn.open_channel(kOps);
    if (!st.is_ok()) return st;
    for (const auto& q : pending_queues()) {
      std::optional<QueueCounts> c;
      st = conn.queue_counts(kOps, q, c);
      if (!st.is_ok() && conn.reply_code() != kNotFound) return st;
      const std::int64_t n = c ? c->messages : 0;
      out[q] = n;
      total += n;
    }
    return Status::ok();
  }

  Lag lag(Duration timeout) override {
    Lag lag;
    nlohmann::json d;
    std::int64_t total = 0;
    if (!depths(timeout, d, total).is_ok()) return lag;
    lag.records = total;
    if (total == 0) {
      lag.seconds = 0;
    } else if (ctx_.stats) {
      lag.seconds = ctx_.stats->snapshot().lag_seconds;
    }
    return lag;
  }

  Status final_sync(Duration deadline) override {
    if (!ctx_.mirror.rabbitmq.sync_definitions) return Status::ok();
    Management src(ctx_.source, deadline);
    Management dst(ctx_.target, deadline);
    if (!src.configured() || !dst.configured()) return Status::ok();
    DefinitionsSync sync(ctx_.mirror.name, src, dst);
    DefinitionsReport report;
    return sync.run(report);
  }

  Status drill_prepare(Duration deadline) override { return rabbitmq::drill_prepare(ctx_, deadline); }
  Status drill_write(DrillMarkers& markers, int count, int consume, Duration deadline) override {
    return rabbitmq::drill_write(ctx_, markers, count, consume, deadline);
  }
  Status drill_check(const DrillMarkers& markers, DrillCheck& out, Duration deadline) override {
    return rabbitmq::drill_check(ctx_, markers, out, deadline);
  }

  Status promote(Duration deadline) override {
    const auto until = Clock::now() + deadline;
    const auto& m = ctx_.mirror;
    StandbyTrimmer trimmer(m.name, ctx_.state_dir, m.rabbitmq.standby_margin);
    if (Status st = trimmer.load(); !st.is_ok()) return st;

    Connection standby(ctx_.target, fmt::format("mirror {} promote", m.name));
    Status st = standby.open(left(until), 0);
    if (!st.is_ok()) return st;

    // Applications write to the promoted side from the switch on; the mirror that will carry
    // those writes back (started once the other side answers again) must capture them from now:
    // its capture queues are declared here, on the promoted side.
    {
      MirrorConfig back = m;
      back.name = opposite_mirror_name(m.name);
      std::swap(back.source, back.target);
      Management dst_mgmt(ctx_.target, std::min(left(until), Duration(3000)));
      std::vector<CaptureState> captures;
      if (Status cst = ensure_capture(standby, dst_mgmt, back, captures); !cst.is_ok()) {
        return Status::retry(fmt::format("capture queues for mirror {} on {}: {}", back.name,
                                         ctx_.target.name, cst.message()));
      }
      for (const auto& c : captures) {
        spdlog::info("mirror={} cluster={} captures exchange {} for {} into {}", m.name,
                     ctx_.target.name, c.exchange, back.name, c.queue);
      }
    }

    // The primary may be gone; then the persisted depths decide.
    Connection primary(ctx_.source, fmt::format("mirror {} promote", m.name));
    Management src_mgmt(ctx_.source, std::min(left(until), Duration(3000)));
    std::set<std::string> queues;
    for (const auto& [q, s] : trimmer.samples()) queues.insert(q);
    const bool primary_up = primary.open(std::min(left(until), Duration(3000)), 0).is_ok();
    if (primary_up && src_mgmt.configured()) {
      nlohmann::json bindings;
      if (src_mgmt.get("/api/bindings/" + src_mgmt.vhost(), bindings).is_ok()) {
        auto live = reachable_queues(bindings, trimmed_exchanges(m.rabbitmq.exchanges));
        queues.insert(live.begin(), live.end());
      }
    }
    st = trimmer.run(queues, primary_up ? &primary : nullptr, primary_up ? &src_mgmt : nullptr,
                     standby, StandbyTrimmer::Mode::promote, left(until));
    spdlog::info("mirror={} cluster={} promoted: standby queues trimmed ({})", m.name,
                 ctx_.target.name, trimmer.to_json().dump());
    return st;
  }

  nlohmann::json retire(Duration deadline) override {
    nlohmann::json out;
    if (ctx_.mirror.rabbitmq.exchanges.empty()) return nlohmann::json::object();
    Connection conn(ctx_.source, fmt::format("mirror {} retire", ctx_.mirror.name));
    Management mgmt(ctx_.source, deadline);
    Status st = conn.open(deadline, 0);
    if (st.is_ok()) st = release_capture(conn, mgmt, ctx_.mirror, out);
    if (!st.is_ok()) {
      spdlog::warn("mirror={} cluster={} capture queues not released: {}", ctx_.mirror.name,
                   ctx_.source.name, st.message());
      return {{"error", st.message()}};
    }
    return out;
  }

  VerifyResult verify(Duration deadline) override {
    VerifyResult r;
    const auto until = Clock::now() + deadline;
    nlohmann::json d;
    std::int64_t total = 0;
    if (Status st = depths(left(until), d, total); !st.is_ok()) {
      r.equal = false;
      r.first_difference = st.message();
      return r;
    }
    r.detail["unmirrored"] = d;
    if (total > 0) {
      r.equal = false;
      for (const auto& [q, n] : d.items()) {
        if (n.get<std::int64_t>() > 0) {
          r.first_difference = fmt::format("queue '{}' on '{}' still holds {} unmirrored messages",
                                           q, ctx_.source.name, n.get<std::int64_t>());
          break;
        }
      }
    }
    Management src(ctx_.source, left(until));
    Management dst(ctx_.target, left(until));
    if (!src.configured() || !dst.configured()) {
      r.unchecked.push_back("definitions: management_uri missing on a cluster");
      return r;
    }
    nlohmann::json sq, tq, sb, tb;
    if (!src.get("/api/queues/" + src.vhost(), sq).is_ok() ||
        !dst.get("/api/queues/" + dst.vhost(), tq).is_ok() ||
        !src.get("/api/bindings/" + src.vhost(), sb).is_ok() ||
        !dst.get("/api/bindings/" + dst.vhost(), tb).is_ok()) {
      r.unchecked.push_back("definitions: management API unreachable");
      return r;
    }
    std::set<std::string> target_queues;
    for (const auto& q : tq) target_queues.insert(q.value("name", ""));
    auto queues = reachable_queues(sb, ctx_.mirror.rabbitmq.exchanges);
    auto depth = nlohmann::json::object();
    for (const auto& q : sq) {
      const std::string name = q.value("name", "");
      if (queues.count(name) == 0) continue;
      depth[name]["source"] = q.value("messages", std::int64_t{0});
      if (target_queues.count(name) == 0 && r.equal) {
        r.equal = false;
        r.first_difference =
            fmt::format("queue '{}' is missing on the target '{}'", name, ctx_.target.name);
      }
    }
    for (const auto& q : tq) {
      const std::string name = q.value("name", "");
      if (depth.contains(name)) depth[name]["target"] = q.value("messages", std::int64_t{0});
    }
    r.detail["queues"] = depth;
    r.unchecked.push_back(
        "message contents: AMQP queues cannot be read without consuming; depths are listed");
    return r;
  }

  nlohmann::json unreplicated(Duration deadline) override {
    nlohmann::json d;
    std::int64_t total = 0;
    Status st = depths(deadline, d, total);
    if (!st.is_ok()) return {{"error", st.message()}};
    return {{"cluster", ctx_.source.name}, {"messages", total}, {"queues", d}};
  }

 private:
  MirrorContext ctx_;
};

}  // namespace

ProbePtr make_probe(const ClusterConfig& cluster) {
  return std::make_unique<RabbitProbe>(cluster);
}

MirrorOpsPtr make_mirror_ops(const MirrorContext& ctx) {
  return std::make_unique<RabbitMirrorOps>(ctx);
}

}  // namespace mqdr::rabbitmq
