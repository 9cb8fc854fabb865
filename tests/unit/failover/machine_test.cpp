// Table-driven tests of every transition of the failover state machine, the refused ones too.

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mqdr/failover_machine.hpp"

namespace mqdr::failover {
namespace {

using namespace std::chrono_literals;
using AT = ActionType;
using GS = GroupState;

// A clock the test moves by hand: every call to next() is one health interval later.
struct TestClock {
  Instant now{std::chrono::steady_clock::time_point(std::chrono::hours(1000)),
              std::chrono::system_clock::time_point(std::chrono::hours(500000))};
  Instant next(Duration d = 1s) {
    now.steady += d;
    now.wall += d;
    return now;
  }
};

MachineSettings settings() {
  MachineSettings s;
  s.mode = FailoverMode::automatic;
  s.interval = 1s;
  s.timeout = 1s;
  s.failures = 3;
  s.recoveries = 2;
  s.max_lag = 30s;
  s.hold_down = 60s;
  s.auto_failback = true;
  s.witnesses = 0;
  return s;
}

struct RowSetup {
  MachineSettings settings = mqdr::failover::settings();
  GS from = GS::replicating;
  std::size_t step_index = 0;
  bool reverse_running = false;
  // Events fed before the one under test (probe history).
  std::function<void(Machine&, TestClock&)> prelude;
};

struct Row {
  std::string name;
  std::function<void(RowSetup&)> setup;
  std::function<Event(TestClock&)> event;
  GS to;
  DecisionKind decision;
  std::vector<AT> actions;
  std::uint64_t epoch_delta = 0;
  std::function<void(const Machine&, const Outcome&)> extra = nullptr;
};

void primary(Machine& m, TestClock& c, bool ok, int n = 1, bool broken = true,
             std::optional<Duration> lag = 1s) {
  for (int i = 0; i < n; ++i) m.handle(Event::probe(c.next(), Side::primary, ok, broken, lag));
}
void standby(Machine& m, TestClock& c, bool ok, int n = 1) {
  for (int i = 0; i < n; ++i) m.handle(Event::probe(c.next(), Side::standby, ok));
}

GroupData base_data(const RowSetup& s, const TestClock& c) {
  GroupData d;
  d.state = s.from;
  d.epoch = 5;
  d.since = c.now.wall;
  bool failback = s.from == GS::failing_back;
  d.active = (s.from == GS::failed_over || failback) ? Side::standby : Side::primary;
  d.reverse_running = s.reverse_running;
  if (s.from == GS::failing_over || failback) {
    SwitchRecord r;
    r.kind = failback ? SwitchKind::failback : SwitchKind::failover;
    r.epoch = 5;
    r.started_at = c.now.wall;
    d.current = r;
    d.step_index = s.step_index;
    if (s.from == GS::failing_over && s.step_index > 5) d.active = Side::standby;
    if (failback && s.step_index > 5) d.active = Side::primary;
  }
  if (s.from == GS::failed_over) d.switched_at = c.now.wall;
  return d;
}

// Steady-state preludes.
auto standby_up = [](Machine& m, TestClock& c) { standby(m, c, true); };
auto suspect_1 = [](Machine& m, TestClock& c) {
  standby(m, c, true);
  primary(m, c, false);
};
auto suspect_2 = [](Machine& m, TestClock& c) {
  standby(m, c, true);
  primary(m, c, false, 2);
};

std::vector<Row> rows() {
  std::vector<Row> r;
  auto none = [](RowSetup&) {};
  // ---- replicating
  r.push_back({"replicating: primary ok stays", none,
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, true); },
               GS::replicating, DecisionKind::ignored, {}});
  r.push_back({"replicating: primary fails -> suspect", none,
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, false, true); },
               GS::suspect, DecisionKind::ignored, {AT::persist, AT::log_event}});
  r.push_back({"replicating: failures=1 trips at once -> failing_over",
               [](RowSetup& s) {
                 s.settings.failures = 1;
                 s.prelude = standby_up;
               },
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, false, true); },
               GS::failing_over, DecisionKind::started,
               {AT::persist, AT::log_event, AT::log_event, AT::run_step}, 1});
  r.push_back({"replicating: standby probe fails, nothing changes", none,
               [](TestClock& c) { return Event::probe(c.next(), Side::standby, false); },
               GS::replicating, DecisionKind::ignored, {}});
  r.push_back({"replicating: manual failover -> failing_over",
               [](RowSetup& s) { s.prelude = standby_up; },
               [](TestClock& c) { return Event::failover(c.next(), false, "drill"); },
               GS::failing_over, DecisionKind::started, {AT::persist, AT::log_event, AT::run_step},
               1, [](const Machine& m, const Outcome&) {
                 ASSERT_TRUE(m.data().current);
                 EXPECT_FALSE(m.data().current->automatic);
                 EXPECT_EQ(m.data().current->reason, "drill");
                 EXPECT_EQ(m.data().current->epoch, 6u);
               }});
  r.push_back({"replicating: manual failover refused, standby never probed", none,
               [](TestClock& c) { return Event::failover(c.next(), false, ""); },
               GS::replicating, DecisionKind::refused, {AT::log_event}, 0,
               [](const Machine&, const Outcome& o) {
                 EXPECT_NE(o.reason.find("has not answered"), std::string::npos) << o.reason;
               }});
  r.push_back({"replicating: manual failover refused, standby down",
               [](RowSetup& s) {
                 s.prelude = [](Machine& m, TestClock& c) { standby(m, c, false); };
               },
               [](TestClock& c) { return Event::failover(c.next(), false, ""); },
               GS::replicating, DecisionKind::refused, {AT::log_event}});
  r.push_back({"replicating: manual failover refused by max_lag",
               [](RowSetup& s) {
                 s.prelude = [](Machine& m, TestClock& c) {
                   standby(m, c, true);
                   primary(m, c, true, 1, false, 45s);
                 };
               },
               [](TestClock& c) { return Event::failover(c.next(), false, ""); },
               GS::replicating, DecisionKind::refused, {AT::log_event}, 0,
               [](const Machine&, const Outcome& o) {
                 EXPECT_NE(o.reason.find("max_lag"), std::string::npos) << o.reason;
                 EXPECT_NE(o.reason.find("--force"), std::string::npos) << o.reason;
               }});
  r.push_back({"replicating: forced failover despite lag and standby down",
               [](RowSetup& s) {
                 s.prelude = [](Machine& m, TestClock& c) {
                   standby(m, c, false);
                   primary(m, c, true, 1, false, 45s);
                 };
               },
               [](TestClock& c) { return Event::failover(c.next(), true, "ops"); },
               GS::failing_over, DecisionKind::started, {AT::persist, AT::log_event, AT::run_step},
               1, [](const Machine& m, const Outcome&) { EXPECT_TRUE(m.data().current->force); }});
  r.push_back({"replicating: failback refused", none,
               [](TestClock& c) { return Event::failback(c.next()); }, GS::replicating,
               DecisionKind::refused, {AT::log_event}});
  r.push_back({"replicating: stray step result ignored", none,
               [](TestClock& c) { return Event::done(c.next(), Step::fence); }, GS::replicating,
               DecisionKind::ignored, {}});
  r.push_back({"replicating: stray step failure ignored", none,
               [](TestClock& c) { return Event::failed(c.next(), Step::fence, true, "x"); },
               GS::replicating, DecisionKind::ignored, {}});
  r.push_back({"replicating: witness verdict without a query ignored", none,
               [](TestClock& c) { return Event::witnesses(c.next(), 1, 1); }, GS::replicating,
               DecisionKind::ignored, {}});
  r.push_back({"replicating: tick does nothing", none,
               [](TestClock& c) { return Event::tick(c.next()); }, GS::replicating,
               DecisionKind::ignored, {}});

  // ---- suspect
  r.push_back({"suspect: second failure stays suspect", [](RowSetup& s) { s.prelude = suspect_1; },
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, false, true); },
               GS::suspect, DecisionKind::ignored, {}});
  r.push_back({"suspect: third failure, mirror broken -> failing_over",
               [](RowSetup& s) { s.prelude = suspect_2; },
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, false, true); },
               GS::failing_over, DecisionKind::started, {AT::persist, AT::log_event, AT::run_step},
               1, [](const Machine& m, const Outcome& o) {
                 EXPECT_TRUE(m.data().current->automatic);
                 EXPECT_EQ(o.actions.back().step, Step::fence);
                 ASSERT_TRUE(m.data().current->lag_at_trigger);
                 EXPECT_EQ(*m.data().current->lag_at_trigger, 1s);
               }});
  r.push_back({"suspect: third failure but mirror healthy (holistic) stays",
               [](RowSetup& s) { s.prelude = suspect_2; },
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, false, false); },
               GS::suspect, DecisionKind::ignored, {AT::log_event}});
  r.push_back({"suspect: manual mode never switches",
               [](RowSetup& s) {
                 s.settings.mode = FailoverMode::manual;
                 s.prelude = suspect_2;
               },
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, false, true); },
               GS::suspect, DecisionKind::ignored, {AT::log_event}});
  r.push_back({"suspect: max_lag refusal -> blocked",
               [](RowSetup& s) {
                 s.prelude = [](Machine& m, TestClock& c) {
                   standby(m, c, true);
                   primary(m, c, false, 2, true, 31s);
                 };
               },
               [](TestClock& c) {
                 return Event::probe(c.next(), Side::primary, false, true, std::nullopt);
               },
               GS::blocked, DecisionKind::refused, {AT::persist, AT::log_event}, 0,
               [](const Machine& m, const Outcome&) {
                 EXPECT_NE(m.data().reason.find("max_lag"), std::string::npos);
               }});
  r.push_back({"suspect: standby down -> blocked",
               [](RowSetup& s) {
                 s.prelude = [](Machine& m, TestClock& c) {
                   standby(m, c, false);
                   primary(m, c, false, 2);
                 };
               },
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, false, true); },
               GS::blocked, DecisionKind::refused, {AT::persist, AT::log_event}});
  r.push_back({"suspect: witnesses configured -> query them",
               [](RowSetup& s) {
                 s.settings.witnesses = 2;
                 s.prelude = suspect_2;
               },
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, false, true); },
               GS::suspect, DecisionKind::ignored, {AT::query_witnesses}});
  auto asked = [](RowSetup& s) {
    s.settings.witnesses = 2;
    s.prelude = [](Machine& m, TestClock& c) {
      standby(m, c, true);
      primary(m, c, false, 3);
      primary(m, c, false, 1);  // a query is already pending: not asked twice
    };
  };
  r.push_back({"suspect: witnesses agree -> failing_over", asked,
               [](TestClock& c) { return Event::witnesses(c.next(), 2, 2); }, GS::failing_over,
               DecisionKind::started, {AT::persist, AT::log_event, AT::run_step}, 1});
  r.push_back({"suspect: witnesses disagree -> blocked", asked,
               [](TestClock& c) { return Event::witnesses(c.next(), 1, 2); }, GS::blocked,
               DecisionKind::refused, {AT::persist, AT::log_event}});
  r.push_back({"suspect: witness verdict after recovery ignored",
               [](RowSetup& s) {
                 s.settings.witnesses = 1;
                 s.prelude = [](Machine& m, TestClock& c) {
                   standby(m, c, true);
                   primary(m, c, false, 3);
                   primary(m, c, true, 2);
                 };
               },
               [](TestClock& c) { return Event::witnesses(c.next(), 1, 1); }, GS::replicating,
               DecisionKind::ignored, {}});
  r.push_back({"suspect: one ok probe is not a recovery", [](RowSetup& s) { s.prelude = suspect_2; },
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, true); },
               GS::suspect, DecisionKind::ignored, {}});
  r.push_back({"suspect: recoveries ok probes -> replicating",
               [](RowSetup& s) {
                 s.prelude = [](Machine& m, TestClock& c) {
                   suspect_2(m, c);
                   primary(m, c, true);
                 };
               },
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, true); },
               GS::replicating, DecisionKind::ignored, {AT::persist, AT::log_event}});
  r.push_back({"suspect: probe gap (process stopped) is not a failure",
               [](RowSetup& s) { s.prelude = suspect_2; },
               [](TestClock& c) { return Event::probe(c.next(60s), Side::primary, false, true); },
               GS::suspect, DecisionKind::ignored, {AT::log_event}, 0,
               [](const Machine& m, const Outcome&) {
                 EXPECT_EQ(m.data().primary_failures, 0);
                 EXPECT_EQ(m.data().clock_jumps, 1u);
               }});
  r.push_back({"suspect: host suspend (wall jumps, steady not) is not a failure",
               [](RowSetup& s) { s.prelude = suspect_2; },
               [](TestClock& c) {
                 c.now.wall += 300s;
                 return Event::probe(c.next(), Side::primary, false, true);
               },
               GS::suspect, DecisionKind::ignored, {AT::log_event}, 0,
               [](const Machine& m, const Outcome&) {
                 EXPECT_EQ(m.data().primary_failures, 0);
               }});
  r.push_back({"suspect: manual failover -> failing_over", [](RowSetup& s) { s.prelude = suspect_1; },
               [](TestClock& c) { return Event::failover(c.next(), false, "ops"); },
               GS::failing_over, DecisionKind::started, {AT::persist, AT::log_event, AT::run_step},
               1});
  r.push_back({"suspect: failback refused", [](RowSetup& s) { s.prelude = suspect_1; },
               [](TestClock& c) { return Event::failback(c.next()); }, GS::suspect,
               DecisionKind::refused, {AT::log_event}});

  // ---- blocked (reached through a max_lag refusal)
  auto blocked = [](RowSetup& s) {
    s.prelude = [](Machine& m, TestClock& c) {
      standby(m, c, true);
      primary(m, c, false, 3, true, 40s);
      ASSERT_EQ(m.data().state, GS::blocked);
    };
  };
  r.push_back({"blocked: still failing stays blocked", blocked,
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, false, true); },
               GS::blocked, DecisionKind::ignored, {}});
  r.push_back({"blocked: primary recovers -> replicating",
               [blocked](RowSetup& s) {
                 blocked(s);
                 auto first = s.prelude;
                 s.prelude = [first](Machine& m, TestClock& c) {
                   first(m, c);
                   primary(m, c, true);
                 };
               },
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, true); },
               GS::replicating, DecisionKind::ignored, {AT::persist, AT::log_event}});
  r.push_back({"blocked: manual failover still refused by max_lag", blocked,
               [](TestClock& c) { return Event::failover(c.next(), false, ""); }, GS::blocked,
               DecisionKind::refused, {AT::log_event}});
  r.push_back({"blocked: forced failover -> failing_over", blocked,
               [](TestClock& c) { return Event::failover(c.next(), true, "accept loss"); },
               GS::failing_over, DecisionKind::started, {AT::persist, AT::log_event, AT::run_step},
               1});
  r.push_back({"blocked: failback refused", blocked,
               [](TestClock& c) { return Event::failback(c.next()); }, GS::blocked,
               DecisionKind::refused, {AT::log_event}});

  // ---- failing_over
  auto at_step = [](GS from, std::size_t index) {
    return [from, index](RowSetup& s) {
      s.from = from;
      s.step_index = index;
    };
  };
  r.push_back({"failing_over: fence done -> drain", at_step(GS::failing_over, 0),
               [](TestClock& c) { return Event::done(c.next(), Step::fence, 5ms); },
               GS::failing_over, DecisionKind::ignored, {AT::persist, AT::log_event, AT::run_step},
               0, [](const Machine& m, const Outcome& o) {
                 EXPECT_EQ(o.actions.back().step, Step::drain);
                 EXPECT_EQ(m.data().step_index, 1u);
                 ASSERT_EQ(m.data().current->steps.size(), 1u);
                 EXPECT_EQ(m.data().current->steps[0].duration_ms, 5);
               }});
  r.push_back({"failing_over: result of another step ignored", at_step(GS::failing_over, 0),
               [](TestClock& c) { return Event::done(c.next(), Step::promote); },
               GS::failing_over, DecisionKind::ignored, {}});
  r.push_back({"failing_over: fence fails (abort) -> blocked, mirrors untouched",
               at_step(GS::failing_over, 0),
               [](TestClock& c) { return Event::failed(c.next(), Step::fence, true, "hook"); },
               GS::blocked, DecisionKind::refused, {AT::persist, AT::log_event, AT::log_event}, 0,
               [](const Machine& m, const Outcome&) {
                 EXPECT_EQ(m.data().active, Side::primary);
                 EXPECT_NE(m.data().current->outcome.find("aborted at fence"), std::string::npos);
               }});
  r.push_back({"failing_over: promote fails (abort) -> blocked, forward mirrors resume",
               at_step(GS::failing_over, 3),
               [](TestClock& c) { return Event::failed(c.next(), Step::promote, true, "x"); },
               GS::blocked, DecisionKind::refused,
               {AT::persist, AT::log_event, AT::log_event, AT::resume_forward}});
  r.push_back({"failing_over: drain fails (retry) -> retried", at_step(GS::failing_over, 1),
               [](TestClock& c) { return Event::failed(c.next(), Step::drain, false, "x"); },
               GS::failing_over, DecisionKind::ignored, {AT::persist, AT::log_event, AT::run_step},
               0, [](const Machine&, const Outcome& o) {
                 EXPECT_TRUE(o.actions.back().retry);
                 EXPECT_EQ(o.actions.back().step, Step::drain);
               }});
  r.push_back({"failing_over: switch_clients cannot abort, it is retried",
               at_step(GS::failing_over, 5),
               [](TestClock& c) { return Event::failed(c.next(), Step::switch_clients, true, "x"); },
               GS::failing_over, DecisionKind::ignored, {AT::persist, AT::log_event, AT::run_step}});
  r.push_back({"failing_over: switch_clients done -> active standby",
               at_step(GS::failing_over, 5),
               [](TestClock& c) { return Event::done(c.next(), Step::switch_clients); },
               GS::failing_over, DecisionKind::ignored, {AT::persist, AT::log_event, AT::run_step},
               0, [](const Machine& m, const Outcome&) {
                 EXPECT_EQ(m.data().active, Side::standby);
               }});
  r.push_back({"failing_over: record done, primary down -> failed_over",
               [](RowSetup& s) {
                 s.from = GS::failing_over;
                 s.step_index = 6;
                 s.prelude = [](Machine& m, TestClock& c) { primary(m, c, false); };
               },
               [](TestClock& c) { return Event::done(c.next(), Step::record); }, GS::failed_over,
               DecisionKind::ignored, {AT::persist, AT::log_event, AT::log_event}, 0,
               [](const Machine& m, const Outcome&) {
                 EXPECT_EQ(m.data().current->outcome, "completed");
                 EXPECT_FALSE(m.data().reverse_running);
               }});
  r.push_back({"failing_over: record done, primary up (switchover) -> reverse starts",
               [](RowSetup& s) {
                 s.from = GS::failing_over;
                 s.step_index = 6;
                 s.prelude = [](Machine& m, TestClock& c) { primary(m, c, true); };
               },
               [](TestClock& c) { return Event::done(c.next(), Step::record); }, GS::failed_over,
               DecisionKind::ignored,
               {AT::persist, AT::log_event, AT::log_event, AT::start_reverse}, 0,
               [](const Machine& m, const Outcome&) { EXPECT_TRUE(m.data().reverse_running); }});
  r.push_back({"failing_over: failover request refused", at_step(GS::failing_over, 2),
               [](TestClock& c) { return Event::failover(c.next(), true, ""); },
               GS::failing_over, DecisionKind::refused, {AT::log_event}});
  r.push_back({"failing_over: failback request refused", at_step(GS::failing_over, 2),
               [](TestClock& c) { return Event::failback(c.next()); }, GS::failing_over,
               DecisionKind::refused, {AT::log_event}});
  r.push_back({"failing_over: probes change nothing", at_step(GS::failing_over, 2),
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, true); },
               GS::failing_over, DecisionKind::ignored, {}});

  // ---- failed_over
  auto failed_over = [](bool reverse, bool primary_up) {
    return [reverse, primary_up](RowSetup& s) {
      s.from = GS::failed_over;
      s.reverse_running = reverse;
      s.prelude = [primary_up](Machine& m, TestClock& c) {
        primary(m, c, false);
        if (primary_up) primary(m, c, true, 2);
      };
    };
  };
  r.push_back({"failed_over: one ok probe of the old primary is not enough",
               failed_over(false, false),
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, true); },
               GS::failed_over, DecisionKind::ignored, {}});
  r.push_back({"failed_over: old primary back -> report and start reverse",
               [](RowSetup& s) {
                 s.from = GS::failed_over;
                 s.prelude = [](Machine& m, TestClock& c) {
                   primary(m, c, false);
                   primary(m, c, true);
                 };
               },
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, true); },
               GS::failed_over, DecisionKind::ignored,
               {AT::persist, AT::log_event, AT::start_reverse}, 0,
               [](const Machine& m, const Outcome& o) {
                 EXPECT_TRUE(m.data().reverse_running);
                 EXPECT_TRUE(o.actions.back().detail.value("report_unreplicated", false));
               }});
  r.push_back({"failed_over: failback refused while the old primary is down",
               failed_over(false, false), [](TestClock& c) { return Event::failback(c.next()); },
               GS::failed_over, DecisionKind::refused, {AT::log_event}});
  r.push_back({"failed_over: failback -> failing_back", failed_over(true, true),
               [](TestClock& c) { return Event::failback(c.next()); }, GS::failing_back,
               DecisionKind::started, {AT::persist, AT::log_event, AT::run_step}, 1,
               [](const Machine& m, const Outcome&) {
                 EXPECT_EQ(m.data().current->kind, SwitchKind::failback);
               }});
  r.push_back({"failed_over: failover refused", failed_over(true, true),
               [](TestClock& c) { return Event::failover(c.next(), true, ""); }, GS::failed_over,
               DecisionKind::refused, {AT::log_event}});
  r.push_back({"failed_over: tick within hold_down stays", failed_over(true, true),
               [](TestClock& c) { return Event::tick(c.next()); }, GS::failed_over,
               DecisionKind::ignored, {}});
  r.push_back({"failed_over: tick after hold_down -> automatic failback",
               failed_over(true, true), [](TestClock& c) { return Event::tick(c.next(120s)); },
               GS::failing_back, DecisionKind::started, {AT::persist, AT::log_event, AT::run_step},
               1, [](const Machine& m, const Outcome&) {
                 EXPECT_TRUE(m.data().current->automatic);
               }});
  r.push_back({"failed_over: no auto_failback, tick after hold_down stays",
               [failed_over](RowSetup& s) {
                 failed_over(true, true)(s);
                 s.settings.auto_failback = false;
               },
               [](TestClock& c) { return Event::tick(c.next(120s)); }, GS::failed_over,
               DecisionKind::ignored, {}});
  r.push_back({"failed_over: manual mode never fails back by itself",
               [failed_over](RowSetup& s) {
                 failed_over(true, true)(s);
                 s.settings.mode = FailoverMode::manual;
               },
               [](TestClock& c) { return Event::tick(c.next(120s)); }, GS::failed_over,
               DecisionKind::ignored, {}});
  r.push_back({"failed_over: old primary down again changes nothing", failed_over(true, true),
               [](TestClock& c) { return Event::probe(c.next(), Side::primary, false); },
               GS::failed_over, DecisionKind::ignored, {}});

  // ---- failing_back
  r.push_back({"failing_back: fence done -> drain", at_step(GS::failing_back, 0),
               [](TestClock& c) { return Event::done(c.next(), Step::fence); }, GS::failing_back,
               DecisionKind::ignored, {AT::persist, AT::log_event, AT::run_step}});
  r.push_back({"failing_back: resume done -> record", at_step(GS::failing_back, 6),
               [](TestClock& c) { return Event::done(c.next(), Step::resume); },
               GS::failing_back, DecisionKind::ignored, {AT::persist, AT::log_event, AT::run_step},
               0, [](const Machine&, const Outcome& o) {
                 EXPECT_EQ(o.actions.back().step, Step::record);
               }});
  r.push_back({"failing_back: record done -> replicating", at_step(GS::failing_back, 7),
               [](TestClock& c) { return Event::done(c.next(), Step::record); },
               GS::replicating, DecisionKind::ignored, {AT::persist, AT::log_event, AT::log_event},
               0, [](const Machine& m, const Outcome&) {
                 EXPECT_EQ(m.data().active, Side::primary);
                 EXPECT_FALSE(m.data().reverse_running);
               }});
  r.push_back({"failing_back: drain not at zero (abort) -> failed_over",
               at_step(GS::failing_back, 1),
               [](TestClock& c) { return Event::failed(c.next(), Step::drain, true, "lag"); },
               GS::failed_over, DecisionKind::refused, {AT::persist, AT::log_event, AT::log_event},
               0, [](const Machine& m, const Outcome&) {
                 EXPECT_EQ(m.data().active, Side::standby);
               }});
  r.push_back({"failing_back: promote fails (abort) -> failed_over, reverse restarted",
               at_step(GS::failing_back, 3),
               [](TestClock& c) { return Event::failed(c.next(), Step::promote, true, "x"); },
               GS::failed_over, DecisionKind::refused,
               {AT::persist, AT::log_event, AT::log_event, AT::start_reverse}});
  r.push_back({"failing_back: failback request refused", at_step(GS::failing_back, 1),
               [](TestClock& c) { return Event::failback(c.next()); }, GS::failing_back,
               DecisionKind::refused, {AT::log_event}});
  r.push_back({"failing_back: failover request refused", at_step(GS::failing_back, 1),
               [](TestClock& c) { return Event::failover(c.next(), true, ""); },
               GS::failing_back, DecisionKind::refused, {AT::log_event}});
  return r;
}

std::vector<AT> types(const std::vector<Action>& actions) {
  std::vector<AT> t;
  for (const auto& a : actions) t.push_back(a.type);
  return t;
}

std::string names(const std::vector<AT>& t) {
  std::string s;
  for (auto a : t) s += std::string(to_string(a)) + " ";
  return s;
}

TEST(FailoverMachine, EveryTransition) {
  for (const auto& row : rows()) {
    SCOPED_TRACE(row.name);
    RowSetup setup;
    row.setup(setup);
    TestClock clock;
    Machine m("east-west", setup.settings);
    m.restore(base_data(setup, clock), clock.now);
    if (setup.prelude) setup.prelude(m, clock);
    if (::testing::Test::HasFatalFailure()) continue;
    auto epoch = m.data().epoch;
    auto out = m.handle(row.event(clock));
    EXPECT_EQ(to_string(m.data().state), std::string(to_string(row.to)));
    EXPECT_EQ(to_string(out.decision), std::string(to_string(row.decision))) << out.reason;
    EXPECT_EQ(names(types(out.actions)), names(row.actions));
    EXPECT_EQ(m.data().epoch, epoch + row.epoch_delta);
    if (row.extra) row.extra(m, out);
  }
}

TEST(FailoverMachine, PersistComesBeforeEveryOtherAction) {
  TestClock clock;
  Machine m("g", settings());
  m.restore({}, clock.now);
  standby(m, clock, true);
  auto out = m.handle(Event::failover(clock.next(), false, ""));
  ASSERT_FALSE(out.actions.empty());
  EXPECT_EQ(out.actions.front().type, AT::persist);
}

TEST(FailoverMachine, WholeFailoverAndFailback) {
  TestClock clock;
  Machine m("g", settings());
  m.restore({}, clock.now);
  standby(m, clock, true);
  primary(m, clock, false, 3);
  ASSERT_EQ(m.data().state, GS::failing_over);
  for (Step s : failover_steps()) {
    auto out = m.handle(Event::done(clock.next(), s));
    EXPECT_NE(out.actions.size(), 0u);
  }
  EXPECT_EQ(m.data().state, GS::failed_over);
  EXPECT_EQ(m.data().active, Side::standby);
  EXPECT_EQ(m.data().epoch, 1u);
  primary(m, clock, true, 2);
  EXPECT_TRUE(m.data().reverse_running);
  ASSERT_EQ(m.handle(Event::failback(clock.next())).decision, DecisionKind::started);
  for (Step s : failback_steps()) m.handle(Event::done(clock.next(), s));
  EXPECT_EQ(m.data().state, GS::replicating);
  EXPECT_EQ(m.data().active, Side::primary);
  EXPECT_EQ(m.data().epoch, 2u);
  // A new outage counts from zero again.
  primary(m, clock, false, 2);
  EXPECT_EQ(m.data().state, GS::suspect);
}

TEST(FailoverMachine, ClockJumpNeverCountsAsFailures) {
  TestClock clock;
  Machine m("g", settings());
  m.restore({}, clock.now);
  standby(m, clock, true);
  primary(m, clock, false, 2);
  // Process stopped for a minute: this round and the counter before it do not count...
  m.handle(Event::probe(clock.next(60s), Side::primary, false, true));
  EXPECT_EQ(m.data().primary_failures, 0);
  primary(m, clock, false, 2);
  EXPECT_EQ(m.data().state, GS::suspect);
  // ...but three real failures afterwards still trip.
  primary(m, clock, false, 1);
  EXPECT_EQ(m.data().state, GS::failing_over);
}

TEST(FailoverMachine, ClockJumpDetection) {
  Machine m("g", settings());
  Instant a{std::chrono::steady_clock::time_point(100s),
            std::chrono::system_clock::time_point(1000000s)};
  auto later = [&](Duration steady, Duration wall) {
    return Instant{a.steady + steady, a.wall + wall};
  };
  EXPECT_FALSE(m.is_clock_jump(a, later(1s, 1s)));
  EXPECT_FALSE(m.is_clock_jump(a, later(3s, 3s)));     // slow probe within the budget
  EXPECT_TRUE(m.is_clock_jump(a, later(30s, 30s)));    // process stopped
  EXPECT_TRUE(m.is_clock_jump(a, later(1s, 600s)));    // host suspended
  EXPECT_TRUE(m.is_clock_jump(a, later(1s, -100s)));   // wall clock stepped back
}

TEST(FailoverMachine, RestoreResumesWhatWasRunning) {
  TestClock clock;
  struct Case {
    GS state;
    std::size_t step;
    bool reverse;
    GS after;
    std::vector<AT> actions;
  };
  std::vector<Case> cases = {
      {GS::replicating, 0, false, GS::replicating, {}},
      {GS::suspect, 0, false, GS::replicating, {AT::persist}},
      {GS::blocked, 0, false, GS::blocked, {}},
      {GS::failing_over, 3, false, GS::failing_over, {AT::run_step}},
      {GS::failed_over, 0, false, GS::failed_over, {}},
      {GS::failed_over, 0, true, GS::failed_over, {AT::start_reverse}},
      {GS::failing_back, 1, true, GS::failing_back, {AT::start_reverse, AT::run_step}},
      {GS::failing_back, 4, true, GS::failing_back, {AT::run_step}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(to_string(c.state));
    RowSetup s;
    s.from = c.state;
    s.step_index = c.step;
    s.reverse_running = c.reverse;
    Machine m("g", settings());
    auto actions = m.restore(base_data(s, clock), clock.now);
    EXPECT_EQ(m.data().state, c.after);
    EXPECT_EQ(names(types(actions)), names(c.actions));
    if (!actions.empty() && actions.back().type == AT::run_step) {
      EXPECT_TRUE(actions.back().retry);
      EXPECT_EQ(actions.back().step, m.steps()[c.step]);
    }
  }
}

TEST(FailoverMachine, JsonRoundTrip) {
  TestClock clock;
  Machine m("g", settings());
  m.restore({}, clock.now);
  standby(m, clock, true);
  primary(m, clock, true, 1, false, 2s);
  m.handle(Event::failover(clock.next(), false, "drill"));
  m.handle(Event::done(clock.next(), Step::fence, 12ms, {{"hooks", 0}}));
  auto j = m.to_json();
  auto d = Machine::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(d.state, GS::failing_over);
  EXPECT_EQ(d.epoch, 1u);
  EXPECT_EQ(d.step_index, 1u);
  ASSERT_TRUE(d.current);
  EXPECT_EQ(d.current->reason, "drill");
  EXPECT_EQ(d.current->steps.size(), 1u);
  EXPECT_EQ(d.current->steps[0].duration_ms, 12);
  ASSERT_TRUE(d.current->lag_at_trigger);
  EXPECT_EQ(*d.current->lag_at_trigger, 2s);
  EXPECT_EQ(format_time(d.since), format_time(m.data().since));
}

TEST(FailoverMachine, FromJsonRejectsBadFiles) {
  TestClock clock;
  Machine m("g", settings());
  m.restore({}, clock.now);
  auto good = m.to_json();
  std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> bad = {
      {"not a JSON object", [](nlohmann::json& j) { j = nlohmann::json::array(); }},
      {"version", [](nlohmann::json& j) { j["version"] = 9; }},
      {"unknown state", [](nlohmann::json& j) { j["state"] = "flying"; }},
      {"epoch", [](nlohmann::json& j) { j["epoch"] = "seven"; }},
      {"epoch", [](nlohmann::json& j) { j["epoch"] = -1; }},
      {"active side", [](nlohmann::json& j) { j["active"] = "both"; }},
      {"'since'", [](nlohmann::json& j) { j["since"] = "yesterday"; }},
      {"'current' is empty", [](nlohmann::json& j) { j["state"] = "failing_over"; }},
      {"missing field 'step_index'", [](nlohmann::json& j) { j.erase("step_index"); }},
  };
  for (auto& [expect, mutate] : bad) {
    auto j = good;
    mutate(j);
    try {
      Machine::from_json(j);
      ADD_FAILURE() << "accepted: " << j.dump();
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
    }
  }
}

TEST(FailoverMachine, TimeFormat) {
  auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1795574495123));
  EXPECT_EQ(format_time(t), "2026-11-25T02:41:35.123Z");
  EXPECT_EQ(parse_time("2026-11-25T02:41:35.123Z"), t);
  EXPECT_EQ(parse_time("2026-11-25T02:41:35Z"), t - std::chrono::milliseconds(123));
  EXPECT_FALSE(parse_time("nope"));
}

}  // namespace
}  // namespace mqdr::failover
