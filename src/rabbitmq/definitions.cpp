#include "rabbitmq/definitions.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "rabbitmq/drill.hpp"

namespace mqdr::rabbitmq {

namespace {

std::string binding_id(const nlohmann::json& b) {
  return fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}", b.value("source", ""),
                     b.value("destination_type", ""), b.value("destination", ""),
                     b.value("routing_key", ""),
                     b.contains("arguments") ? b["arguments"].dump() : "{}");
}

bool skip_binding(const nlohmann::json& b) {
  const std::string src = b.value("source", "");
  const std::string dst = b.value("destination", "");
  if (src.empty()) return true;  // implicit default-exchange bindings
  if (dst.rfind("mqdr.", 0) == 0 || dst.rfind("amq.gen-", 0) == 0) return true;
  if (b.value("destination_type", "") == "exchange" && DefinitionsSync::skip_exchange(dst)) {
    return true;
  }
  return false;
}

nlohmann::json args_of(const nlohmann::json& o) {
  return o.contains("arguments") && o["arguments"].is_object() ? o["arguments"]
                                                               : nlohmann::json::object();
}

}  // namespace

nlohmann::json DefinitionsReport::to_json() const {
  return {{"exchanges_created", exchanges_created}, {"queues_created", queues_created},
          {"bindings_created", bindings_created},   {"bindings_removed", bindings_removed},
          {"policies_applied", policies_applied},   {"policies_removed", policies_removed},
          {"problems", problems}};
}

DefinitionsSync::DefinitionsSync(std::string mirror, Management& source, Management& target)
    : mirror_(std::move(mirror)), source_(source), target_(target) {}

bool DefinitionsSync::skip_exchange(const std::string& name) {
  return name.empty() || name.rfind("amq.", 0) == 0;
}

bool DefinitionsSync::skip_queue(const nlohmann::json& q) {
  const std::string name = q.value("name", "");
  if (name.rfind("mqdr.", 0) == 0 || name.rfind("amq.", 0) == 0) return true;
  return q.value("exclusive", false);
}

std::set<std::string> reachable_queues(const nlohmann::json& bindings,
                                       const std::vector<std::string>& exchanges) {
  std::set<std::string> queues;
  std::set<std::string> seen(exchanges.begin(), exchanges.end());
  std::vector<std::string> todo(exchanges.begin(), exchanges.end());
  while (!todo.empty()) {
    const std::string ex = todo.back();
    todo.pop_back();
    for (const auto& b : bindings) {
      if (b.value("source", "") != ex) continue;
      const std::string dst = b.value("destination", "");
      if (b.value("destination_type", "") == "queue") {
        // mqdr's own queues are not the application's, except the drill's (trimmed like one).
        if (dst.rfind("mqdr.", 0) != 0 || dst == kDrillQueue) queues.insert(dst);
      } else if (seen.insert(dst).second) {
        todo.push_back(dst);
      }
    }
  }
  return queues;
}

Status DefinitionsSync::run(DefinitionsReport& report) {
  report = DefinitionsReport{};
  const std::string sv = source_.vhost();
  const std::string tv = target_.vhost();
  nlohmann::json s_ex, s_q, s_b, s_p, t_ex, t_q, t_b, t_p;
  Status st;
  if (st = source_.get("/api/exchanges/" + sv, s_ex); !st.is_ok()) return st;
  if (st = source_.get("/api/queues/" + sv, s_q); !st.is_ok()) return st;
  if (st = source_.get("/api/bindings/" + sv, s_b); !st.is_ok()) return st;
  if (st = source_.get("/api/policies/" + sv, s_p); !st.is_ok()) return st;
  if (st = target_.get("/api/exchanges/" + tv, t_ex); !st.is_ok()) return st;
  if (st = target_.get("/api/queues/" + tv, t_q); !st.is_ok()) return st;
  if (st = target_.get("/api/bindings/" + tv, t_b); !st.is_ok()) return st;
  if (st = target_.get("/api/policies/" + tv, t_p); !st.is_ok()) return st;

  auto problem = [&](std::string what) {
    spdlog::warn("mirror={} cluster={} definitions: {}", mirror_, target_.cluster().name, what);
    report.problems.push_back(std::move(what));
  };
  auto index = [](const nlohmann::json& list) {
    std::map<std::string, nlohmann::json> m;
    for (const auto& o : list) m[o.value("name", "")] = o;
    return m;
  };

  // Exchanges first (bindings need both ends), then queues, bindings, policies.
  auto target_ex = index(t_ex);
  for (const auto& e : s_ex) {
    const std::string name = e.value("name", "");
    if (skip_exchange(name)) continue;
    auto it = target_ex.find(name);
    if (it != target_ex.end()) {
      if (it->second.value("type", "") != e.value("type", "") ||
          args_of(it->second) != args_of(e)) {
        problem(fmt::format("exchange '{}' differs on the target (type {} vs {}, arguments)", name,
                            it->second.value("type", ""), e.value("type", "")));
      }
      continue;
    }
    nlohmann::json body = {{"type", e.value("type", "direct")},
                           {"durable", e.value("durable", true)},
                           {"auto_delete", e.value("auto_delete", false)},
                           {"internal", e.value("internal", false)},
                           {"arguments", args_of(e)}};
    st = target_.put(fmt::format("/api/exchanges/{}/{}", tv, Management::enc(name)), body);
    if (st.is_ok()) {
      ++report.exchanges_created;
    } else if (target_.last_status() == 0) {
      return st;
    } else {
      problem(fmt::format("exchange '{}': {}", name, st.message()));
    }
  }

  auto target_q = index(t_q);
  for (const auto& q : s_q) {
    const std::string name = q.value("name", "");
    if (skip_queue(q)) continue;
    auto it = target_q.find(name);
    if (it != target_q.end()) {
      if (args_of(it->second) != args_of(q)) {
        problem(fmt::format("queue '{}' exists on the target with other arguments ({} vs {})",
                            name, args_of(it->second).dump(), args_of(q).dump()));
      }
      continue;
    }
    nlohmann::json body = {{"durable", q.value("durable", true)},
                           {"auto_delete", q.value("auto_delete", false)},
                           {"arguments", args_of(q)}};
    st = target_.put(fmt::format("/api/queues/{}/{}", tv, Management::enc(name)), body);
    if (st.is_ok()) {
      ++report.queues_created;
    } else if (target_.last_status() == 0) {
      return st;
    } else {
      problem(fmt::format("queue '{}': {}", name, st.message()));
    }
  }

  std::map<std::string, nlohmann::json> target_b;
  for (const auto& b : t_b) {
    if (!skip_binding(b)) target_b[binding_id(b)] = b;
  }
  std::set<std::string> source_ids;
  for (const auto& b : s_b) {
    if (skip_binding(b)) continue;
    const std::string id = binding_id(b);
    source_ids.insert(id);
    if (target_b.count(id) != 0) {
      synced_bindings_.insert(id);
      continue;
    }
    const char* kind = b.value("destination_type", "") == "exchange" ? "e" : "q";
    nlohmann::json body = {{"routing_key", b.value("routing_key", "")},
                           {"arguments", args_of(b)}};
    st = target_.post(fmt::format("/api/bindings/{}/e/{}/{}/{}", tv,
                                  Management::enc(b.value("source", "")), kind,
                                  Management::enc(b.value("destination", ""))),
                      body);
    if (st.is_ok()) {
      ++report.bindings_created;
      synced_bindings_.insert(id);
    } else if (target_.last_status() == 0) {
      return st;
    } else {
      problem(fmt::format("binding {} -> {} '{}': {}", b.value("source", ""),
                          b.value("destination", ""), b.value("routing_key", ""), st.message()));
    }
  }
  // Bindings this mirror synced earlier that the source no longer has.
  for (auto it = synced_bindings_.begin(); it != synced_bindings_.end();) {
    if (source_ids.count(*it) != 0) {
      ++it;
      continue;
    }
    auto tb = target_b.find(*it);
    if (tb != target_b.end()) {
      const auto& b = tb->second;
      const char* kind = b.value("destination_type", "") == "exchange" ? "e" : "q";
      st = target_.del(fmt::format("/api/bindings/{}/e/{}/{}/{}/{}", tv,
                                   Management::enc(b.value("source", "")), kind,
                                   Management::enc(b.value("destination", "")),
                                   Management::enc(b.value("properties_key", ""))));
      if (st.is_ok()) {
        ++report.bindings_removed;
      } else if (target_.last_status() == 0) {
        return st;
      } else if (target_.last_status() != 404) {
        problem(fmt::format("removing binding {} -> {}: {}", b.value("source", ""),
                            b.value("destination", ""), st.message()));
        ++it;
        continue;
      }
    }
    it = synced_bindings_.erase(it);
  }

  auto target_p = index(t_p);
  std::set<std::string> source_policies;
  for (const auto& p : s_p) {
    const std::string name = p.value("name", "");
    source_policies.insert(name);
    nlohmann::json body = {{"pattern", p.value("pattern", "")},
                           {"definition", p.value("definition", nlohmann::json::object())},
                           {"priority", p.value("priority", 0)},
                           {"apply-to", p.value("apply-to", "all")}};
    auto it = target_p.find(name);
    if (it != target_p.end() && it->second.value("pattern", "") == body["pattern"] &&
        it->second.value("definition", nlohmann::json::object()) == body["definition"] &&
        it->second.value("priority", 0) == body["priority"] &&
        it->second.value("apply-to", "all") == body["apply-to"]) {
      synced_policies_.insert(name);
      continue;
    }
    st = target_.put(fmt::format("/api/policies/{}/{}", tv, Management::enc(name)), body);
    if (st.is_ok()) {
      ++report.policies_applied;
      synced_policies_.insert(name);
    } else if (target_.last_status() == 0) {
      return st;
    } else {
      problem(fmt::format("policy '{}': {}", name, st.message()));
    }
  }
  for (auto it = synced_policies_.begin(); it != synced_policies_.end();) {
    if (source_policies.count(*it) != 0) {
      ++it;
      continue;
    }
    st = target_.del(fmt::format("/api/policies/{}/{}", tv, Management::enc(*it)));
    if (st.is_ok()) {
      ++report.policies_removed;
    } else if (target_.last_status() == 0) {
      return st;
    }
    it = synced_policies_.erase(it);
  }

  const int changes = report.exchanges_created + report.queues_created + report.bindings_created +
                      report.bindings_removed + report.policies_applied + report.policies_removed;
  if (changes > 0) {
    spdlog::info(
        "mirror={} cluster={} definitions synced: {} exchanges, {} queues, {} bindings created, "
        "{} bindings removed, {} policies applied, {} removed",
        mirror_, target_.cluster().name, report.exchanges_created, report.queues_created,
        report.bindings_created, report.bindings_removed, report.policies_applied,
        report.policies_removed);
  }
  return Status::ok();
}

}  // namespace mqdr::rabbitmq
