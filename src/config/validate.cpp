// Checks across sections, after every section was read: names refer to existing clusters of the
// right kind, names are unique, failover pairs make sense. Values that came from ${ENV} are not
// repeated in messages (Parser::quote).

#include <map>

#include <fmt/format.h>

#include "config/reader.hpp"
#include "config/schema.hpp"

namespace mqdr::config::detail {

namespace {

class Checker {
 public:
  explicit Checker(Parser& p) : p_(p), c_(p.cfg) {
    for (const auto& [name, cluster] : c_.clusters) names_.push_back(name);
  }

  void run() {
    mirrors();
    failover();
    backups();
    nothing_to_do();
  }

 private:
  // The cluster named at `path`, or nullptr after reporting why not.
  const ClusterConfig* cluster(const std::string& path, const std::string& name) {
    if (name.empty()) return nullptr;  // already reported when read
    if (const auto* c = c_.cluster(name)) return c;
    std::string message = fmt::format("unknown cluster{}", p_.quote(path, name));
    auto hint = p_.quote(path, name).empty() ? std::string() : closest(name, names_);
    if (!hint.empty()) {
      message += fmt::format("; did you mean '{}'?", hint);
    } else if (names_.empty()) {
      message += "; no clusters are defined under 'clusters'";
    } else {
      message += "; defined clusters: " + fmt::format("{}", fmt::join(names_, ", "));
    }
    p_.error(p_.mark_of(path), path, message);
    return nullptr;
  }

  // Reports a second use of the same name within one list.
  void unique(const std::string& list, const std::string& noun,
              const std::vector<std::string>& names) {
    std::map<std::string, std::size_t> first;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i].empty()) continue;
      auto [it, inserted] = first.emplace(names[i], i);
      if (inserted) continue;
      std::string path = fmt::format("{}[{}].name", list, i);
      std::string other = fmt::format("{}[{}].name", list, it->second);
      p_.error(p_.mark_of(path), path,
               fmt::format("another {} is already named{} (line {}); names must be unique",
                           noun, p_.quote(path, names[i]), p_.line_of(other)));
    }
  }

  // Source and target (primary and standby) of one kind, and two different clusters.
  void pair(const std::string& a_path, const ClusterConfig* a, const std::string& b_path,
            const ClusterConfig* b, const char* a_role, const char* b_role) {
    if (a == nullptr || b == nullptr) return;
    if (a->name == b->name) {
      p_.error(p_.mark_of(b_path), b_path,
               fmt::format("{} and {} are the same cluster", a_role, b_role));
    } else if (a->kind != b->kind) {
      p_.error(p_.mark_of(b_path), b_path,
               fmt::format("{}{} is a {} cluster but {}{} is a {} cluster; they must be of one "
                           "kind",
                           a_role, p_.quote(a_path, a->name), to_string(a->kind), b_role,
                           p_.quote(b_path, b->name), to_string(b->kind)));
    }
  }

  void mirrors() {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < c_.mirrors.size(); ++i) {
      const auto& m = c_.mirrors[i];
      names.push_back(m.name);
      std::string base = fmt::format("mirrors[{}]", i);
      const auto* source = cluster(base + ".source", m.source);
      const auto* target = cluster(base + ".target", m.target);
      pair(base + ".source", source, base + ".target", target, "source", "target");
    }
    unique("mirrors", "mirror", names);
    // Two mirrors in opposite directions that keep names copy each record back and forth.
    for (std::size_t i = 0; i < c_.mirrors.size(); ++i) {
      for (std::size_t j = i + 1; j < c_.mirrors.size(); ++j) {
        const auto& a = c_.mirrors[i];
        const auto& b = c_.mirrors[j];
        if (a.source.empty() || a.source != b.target || a.target != b.source) continue;
        auto keeps_names = [](const MirrorConfig& m) {
          return m.kind != ClusterKind::kafka || (m.kafka.rename.find("{source}") ==
                                                      std::string::npos &&
                                                  m.kafka.rename.find("{target}") ==
                                                      std::string::npos);
        };
        if (!keeps_names(a) || !keeps_names(b)) continue;
        std::string path = fmt::format("mirrors[{}]", j);
        p_.warning(p_.mark_of(path), path,
                   fmt::format("this mirror and mirror{} (line {}) copy in opposite "
                               "directions under the same names: whatever both select loops "
                               "forever between the clusters",
                               p_.quote(fmt::format("mirrors[{}].name", i), a.name),
                               p_.line_of(fmt::format("mirrors[{}]", i))));
      }
    }
  }

  void failover() {
    std::vector<std::string> names;
    struct Use {
      std::string group;       // its name
      std::string group_path;  // failover[g].name
      std::string path;        // of the pair's primary
    };
    std::map<std::string, Use> primaries;
    for (std::size_t g = 0; g < c_.failover.size(); ++g) {
      const auto& group = c_.failover[g];
      names.push_back(group.name);
      std::map<std::string, std::string> in_group;  // cluster -> path of its first use
      for (std::size_t k = 0; k < group.pairs.size(); ++k) {
        const auto& pr = group.pairs[k];
        std::string base = fmt::format("failover[{}].pairs[{}]", g, k);
        const auto* primary = cluster(base + ".primary", pr.primary);
        const auto* standby = cluster(base + ".standby", pr.standby);
        pair(base + ".primary", primary, base + ".standby", standby, "primary", "standby");
        for (const auto& [role, name] : {std::pair{"primary", pr.primary},
                                         std::pair{"standby", pr.standby}}) {
          // A pair of a cluster with itself was reported above.
          if (name.empty() || (std::string(role) == "standby" && pr.primary == pr.standby)) {
            continue;
          }
          std::string path = base + "." + role;
          auto [it, inserted] = in_group.emplace(name, path);
          if (!inserted) {
            p_.error(p_.mark_of(path), path,
                     fmt::format("cluster{} is already in this group (line {}); a cluster "
                                 "belongs to one pair",
                                 p_.quote(path, name), p_.line_of(it->second)));
          }
        }
        if (primary != nullptr) {
          std::string path = base + ".primary";
          std::string group_path = fmt::format("failover[{}].name", g);
          auto [it, inserted] =
              primaries.emplace(pr.primary, Use{group.name, group_path, path});
          if (!inserted && it->second.group_path != group_path) {
            p_.error(p_.mark_of(path), path,
                     fmt::format("cluster{} is already the primary of failover group{} "
                                 "(line {}); a cluster fails over in one group only",
                                 p_.quote(path, pr.primary),
                                 p_.quote(it->second.group_path, it->second.group),
                                 p_.line_of(it->second.path)));
          }
        }
        if (primary != nullptr && standby != nullptr && primary->kind == standby->kind &&
            pr.primary != pr.standby) {
          bool mirrored = false;
          for (std::size_t i = 0; i < c_.mirrors.size(); ++i) {
            const auto& m = c_.mirrors[i];
            if (m.source != pr.primary || m.target != pr.standby) continue;
            mirrored = true;
            if (m.kind == ClusterKind::nats && m.nats.mode == NatsMode::native) {
              const std::string mode_path = fmt::format("mirrors[{}].mode", i);
              p_.warning(p_.mark_of(mode_path), mode_path,
                         fmt::format("mirror{} copies a failover pair in native mode: a failback "
                                     "brings copies back as duplicates (nats-server 2.9 sourcing "
                                     "has no loop check; docs/nats.md); use 'mode: relay' for a "
                                     "group that fails back",
                                     p_.quote(fmt::format("mirrors[{}].name", i), m.name)));
            }
          }
          if (!mirrored) {
            p_.warning(p_.mark_of(base), base,
                       fmt::format("no mirror copies{} to{}: a failover would promote a standby "
                                   "without the primary's data",
                                   p_.quote(base + ".primary", pr.primary),
                                   p_.quote(base + ".standby", pr.standby)));
          }
        }
      }
    }
    unique("failover", "failover group", names);
  }

  void backups() {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < c_.backups.size(); ++i) {
      names.push_back(c_.backups[i].name);
      cluster(fmt::format("backups[{}].cluster", i), c_.backups[i].cluster);
    }
    unique("backups", "backup plan", names);
  }

  void nothing_to_do() {
    if (c_.mirrors.empty() && c_.failover.empty() && c_.backups.empty() && !p_.has_errors()) {
      p_.warning(YAML::Mark::null_mark(), "",
                 "nothing to do: no mirrors, failover groups or backup plans are configured");
    }
  }

  Parser& p_;
  const Config& c_;
  std::vector<std::string> names_;
};

}  // namespace

void check_references(Parser& p) { Checker(p).run(); }

}  // namespace mqdr::config::detail
