// docker/: there is no Docker engine on the build machines, so this checks everything that can
// be checked without one. The compose file is read the way `docker compose` reads it (YAML merge
// keys, ${VAR} interpolation from docker/.env); every file it mounts exists; the mqdr config it
// mounts validates with the built `mqdr validate` in the environment compose gives it; health
// checks and depends_on order the start; Prometheus's config and alert rules pass promtool; the
// Grafana provisioning and dashboard fit together and use the SPEC metric names; the Dockerfile
// installs every Debian package the build and the binary need, and its HEALTHCHECK command works
// against a running mqdr.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <regex>
#include <set>

#include "tests/unit/ops/ops_util.hpp"

namespace mqdr::ops_test {
namespace {

const fs::path kSource = MQDR_SOURCE_DIR;
const fs::path kDocker = kSource / "docker";

using Env = std::map<std::string, std::string>;

// docker/.env: NAME=value lines (comments and blank lines skipped, optional quotes removed).
Env read_dotenv(const fs::path& file) {
  Env env;
  std::stringstream in(slurp(file));
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    env[trim(line.substr(0, eq))] = value;
  }
  return env;
}

// Compose interpolation: $$, $NAME, ${NAME}, ${NAME:-default}, ${NAME-default},
// ${NAME:?error}, ${NAME?error}, ${NAME:+alt}, ${NAME+alt}. An unset variable without a default
// is reported (compose would substitute an empty string with a warning).
std::string interpolate(const std::string& in, const Env& env, std::vector<std::string>& errors) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '$') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 1 < in.size() && in[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    std::string name;
    std::string op;
    std::string arg;
    if (i + 1 < in.size() && in[i + 1] == '{') {
      auto close = in.find('}', i + 2);
      if (close == std::string::npos) {
        errors.push_back("unterminated ${ in: " + in);
        return out;
      }
      std::string body = in.substr(i + 2, close - i - 2);
      std::smatch m;
      if (!std::regex_match(body, m, std::regex(R"(([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?)"))) {
        errors.push_back("bad interpolation ${" + body + "}");
        return out;
      }
      name = m[1];
      op = m[2];
      arg = m[3];
      i = close;
    } else {
      std::size_t j = i + 1;
      while (j < in.size() && (std::isalnum(static_cast<unsigned char>(in[j])) || in[j] == '_')) ++j;
      name = in.substr(i + 1, j - i - 1);
      if (name.empty()) {
        out.push_back('$');
        continue;
      }
      i = j - 1;
    }
    auto it = env.find(name);
    const bool set = it != env.end();
    const bool non_empty = set && !it->second.empty();
    if (op == ":-" || op == "-") {
      out += (op == ":-" ? non_empty : set) ? it->second : arg;
    } else if (op == ":?" || op == "?") {
      if (op == ":?" ? non_empty : set) {
        out += it->second;
      } else {
        errors.push_back("required variable " + name + " is missing: " + arg);
      }
    } else if (op == ":+" || op == "+") {
      if (op == ":+" ? non_empty : set) out += arg;
    } else if (set) {
      out += it->second;
    } else {
      errors.push_back("variable " + name + " is not set in docker/.env");
    }
  }
  return out;
}

// A copy of `n` with YAML merge keys (<<) applied and every scalar interpolated.
YAML::Node resolve(const YAML::Node& n, const Env& env, std::vector<std::string>& errors) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return YAML::Node(interpolate(n.Scalar(), env, errors));
    case YAML::NodeType::Sequence: {
      YAML::Node out(YAML::NodeType::Sequence);
      for (const auto& c : n) out.push_back(resolve(c, env, errors));
      return out;
    }
    case YAML::NodeType::Map: {
      YAML::Node out(YAML::NodeType::Map);
      std::set<std::string> keys;
      std::vector<YAML::Node> merges;
      for (const auto& kv : n) {
        const std::string key = kv.first.Scalar();
        if (key == "<<") {
          if (kv.second.IsSequence()) {
            for (const auto& m : kv.second) merges.push_back(m);
          } else {
            merges.push_back(kv.second);
          }
          continue;
        }
        out[key] = resolve(kv.second, env, errors);
        keys.insert(key);
      }
      for (const auto& m : merges) {
        YAML::Node merged = resolve(m, env, errors);
        for (const auto& kv : merged) {
          const std::string key = kv.first.Scalar();
          if (keys.insert(key).second) out[key] = kv.second;
        }
      }
      return out;
    }
    default:
      return YAML::Node(YAML::NodeType::Null);
  }
}

std::string str(const YAML::Node& n) { return n && n.IsScalar() ? n.Scalar() : std::string(); }

std::vector<std::string> strings(const YAML::Node& n) {
  std::vector<std::string> out;
  if (!n) return out;
  if (n.IsScalar()) {
    std::stringstream ss(n.Scalar());
    std::string w;
    while (ss >> w) out.push_back(w);
  } else if (n.IsSequence()) {
    for (const auto& c : n) out.push_back(str(c));
  }
  return out;
}

// A service's environment as a map (both the mapping and the list form).
Env service_env(const YAML::Node& service) {
  Env env;
  const YAML::Node e = service["environment"];
  if (!e) return env;
  if (e.IsMap()) {
    for (const auto& kv : e) env[kv.first.Scalar()] = str(kv.second);
  } else {
    for (const auto& item : e) {
      const std::string s = str(item);
      auto eq = s.find('=');
      if (eq != std::string::npos) env[s.substr(0, eq)] = s.substr(eq + 1);
    }
  }
  return env;
}

struct Mount {
  std::string type;    // bind | volume
  std::string source;  // host path (as written) or volume name
  std::string target;
};

std::vector<Mount> service_mounts(const YAML::Node& service) {
  std::vector<Mount> out;
  for (const auto& v : service["volumes"]) {
    Mount m;
    if (v.IsScalar()) {
      std::vector<std::string> parts;
      std::stringstream ss(v.Scalar());
      std::string part;
      while (std::getline(ss, part, ':')) parts.push_back(part);
      m.source = parts.size() > 1 ? parts[0] : "";
      m.target = parts.size() > 1 ? parts[1] : parts[0];
      m.type = (!m.source.empty() && (m.source[0] == '.' || m.source[0] == '/' || m.source[0] == '~'))
                   ? "bind"
                   : "volume";
    } else {
      m.type = str(v["type"]);
      m.source = str(v["source"]);
      m.target = str(v["target"]);
    }
    out.push_back(m);
  }
  return out;
}

// The host path mounted at `container_path` in `service` (a file mount or inside a directory
// mount), or nullopt.
std::optional<fs::path> host_path(const YAML::Node& service, const fs::path& container_path) {
  for (const auto& m : service_mounts(service)) {
    if (m.type != "bind") continue;
    const fs::path target = fs::path(m.target).lexically_normal();
    const fs::path rel = container_path.lexically_normal().lexically_relative(target);
    if (rel.empty() || rel.native().rfind("..", 0) == 0) continue;
    fs::path host = (kDocker / m.source).lexically_normal();
    return rel == "." ? host : (host / rel).lexically_normal();
  }
  return std::nullopt;
}

// Host part of "host:port", "scheme://[user@]host:port/path".
std::pair<std::string, std::string> host_port(std::string address) {
  auto scheme = address.find("://");
  if (scheme != std::string::npos) address = address.substr(scheme + 3);
  auto slash = address.find('/');
  if (slash != std::string::npos) address = address.substr(0, slash);
  auto at = address.rfind('@');
  if (at != std::string::npos) address = address.substr(at + 1);
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return {address, ""};
  return {address.substr(0, colon), address.substr(colon + 1)};
}

class Compose : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::is_regular_file(kDocker / "docker-compose.yml"));
    ASSERT_TRUE(fs::is_regular_file(kDocker / ".env"));
    dotenv = read_dotenv(kDocker / ".env");
    std::vector<std::string> errors;
    root = resolve(YAML::LoadFile((kDocker / "docker-compose.yml").string()), dotenv, errors);
    ASSERT_TRUE(errors.empty()) << join(errors);
    services = root["services"];
    ASSERT_TRUE(services && services.IsMap());
  }
  YAML::Node service(const std::string& name) {
    YAML::Node s = services[name];
    EXPECT_TRUE(s.IsMap()) << "no service " << name;
    return s;
  }
  std::vector<std::string> names_with_image(const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& kv : services) {
      if (str(kv.second["image"]).rfind(prefix, 0) == 0) out.push_back(kv.first.Scalar());
    }
    return out;
  }
  // The service that is built from docker/Dockerfile: mqdr.
  std::string mqdr_service() {
    for (const auto& kv : services) {
      if (kv.second["build"]) return kv.first.Scalar();
    }
    return "";
  }
  Env dotenv;
  YAML::Node root;
  YAML::Node services;
};

TEST_F(Compose, HasTheTopologyWithPinnedOfficialImages) {
  EXPECT_EQ(names_with_image("apache/kafka:").size(), 2U);
  EXPECT_EQ(names_with_image("nats:").size(), 2U);
  EXPECT_EQ(names_with_image("rabbitmq:3.").size(), 2U);
  EXPECT_EQ(names_with_image("prom/prometheus:").size(), 1U);
  EXPECT_EQ(names_with_image("grafana/grafana:").size(), 1U);
  EXPECT_FALSE(mqdr_service().empty());
  const std::regex pinned(R"([^:]+:v?\d+\.\d+\.\d+(-[a-z]+)?)");
  for (const auto& kv : services) {
    const std::string image = str(kv.second["image"]);
    if (kv.second["build"]) continue;
    EXPECT_TRUE(std::regex_match(image, pinned)) << kv.first.Scalar() << ": " << image
                                                 << " is not pinned to a version";
  }
  for (const auto& name : names_with_image("rabbitmq:")) {
    EXPECT_NE(str(service(name)["image"]).find("-management"), std::string::npos) << name;
  }
  for (const auto& name : names_with_image("nats:")) {
    auto cmd = strings(service(name)["command"]);
    EXPECT_NE(std::find(cmd.begin(), cmd.end(), "-js"), cmd.end()) << name << ": JetStream off";
  }
  // KRaft: broker+controller roles, distinct cluster ids, advertised under the service name.
  std::set<std::string> cluster_ids;
  for (const auto& name : names_with_image("apache/kafka:")) {
    Env env = service_env(service(name));
    EXPECT_NE(env["KAFKA_PROCESS_ROLES"].find("controller"), std::string::npos) << name;
    EXPECT_FALSE(env["CLUSTER_ID"].empty()) << name;
    cluster_ids.insert(env["CLUSTER_ID"]);
    EXPECT_EQ(env["KAFKA_ADVERTISED_LISTENERS"], "PLAINTEXT://" + name + ":9092") << name;
    EXPECT_EQ(env["KAFKA_CONTROLLER_QUORUM_VOTERS"], "1@" + name + ":9093") << name;
  }
  EXPECT_EQ(cluster_ids.size(), 2U);
}

TEST_F(Compose, EveryReferencedFileExists) {
  std::set<std::string> declared_volumes;
  for (const auto& kv : root["volumes"]) declared_volumes.insert(kv.first.Scalar());
  for (const auto& kv : services) {
    const std::string name = kv.first.Scalar();
    for (const auto& m : service_mounts(kv.second)) {
      if (m.type == "bind") {
        EXPECT_TRUE(fs::exists(kDocker / m.source)) << name << ": mounts missing " << m.source;
      } else {
        EXPECT_TRUE(declared_volumes.count(m.source)) << name << ": undeclared volume " << m.source;
      }
    }
    if (const YAML::Node build = kv.second["build"]) {
      const fs::path context = kDocker / str(build["context"]);
      EXPECT_TRUE(fs::is_directory(context)) << name;
      EXPECT_TRUE(fs::is_regular_file(context / str(build["dockerfile"]))) << name;
      EXPECT_EQ(fs::canonical(context / str(build["dockerfile"])),
                fs::canonical(kDocker / "Dockerfile"));
    }
  }
}

TEST_F(Compose, PublishesPortsOnLoopbackOnly) {
  for (const auto& kv : services) {
    for (const auto& p : kv.second["ports"]) {
      EXPECT_EQ(str(p).rfind("127.0.0.1:", 0), 0U) << kv.first.Scalar() << ": " << str(p);
    }
  }
}

TEST_F(Compose, HealthChecksOrderTheStart) {
  const std::string dockerfile = slurp(kDocker / "Dockerfile");
  auto healthy = [&](const std::string& name) {
    const YAML::Node s = services[name];
    if (s["healthcheck"] && s["healthcheck"]["test"]) return true;
    return s["build"] && dockerfile.find("\nHEALTHCHECK ") != std::string::npos;
  };
  std::map<std::string, std::vector<std::string>> deps;
  for (const auto& kv : services) {
    const std::string name = kv.first.Scalar();
    EXPECT_TRUE(healthy(name)) << name << " has no health check";
    const YAML::Node d = kv.second["depends_on"];
    if (!d) continue;
    ASSERT_TRUE(d.IsMap()) << name << ": depends_on needs conditions";
    for (const auto& dep : d) {
      const std::string target = dep.first.Scalar();
      EXPECT_TRUE(services[target]) << name << " depends on unknown " << target;
      EXPECT_EQ(str(dep.second["condition"]), "service_healthy") << name << " -> " << target;
      deps[name].push_back(target);
    }
  }
  // mqdr waits for all six brokers, Prometheus for mqdr, Grafana for Prometheus.
  std::vector<std::string> brokers;
  for (const char* prefix : {"apache/kafka:", "nats:", "rabbitmq:"}) {
    for (const auto& n : names_with_image(prefix)) brokers.push_back(n);
  }
  const std::string mqdr = mqdr_service();
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(deps[mqdr]), sorted(brokers));
  EXPECT_EQ(deps[names_with_image("prom/prometheus:").at(0)], std::vector<std::string>{mqdr});
  EXPECT_EQ(deps[names_with_image("grafana/grafana:").at(0)],
            names_with_image("prom/prometheus:"));
  // No cycles: a topological order exists.
  std::set<std::string> done;
  for (std::size_t round = 0; round < deps.size() + services.size(); ++round) {
    for (const auto& kv : services) {
      const std::string name = kv.first.Scalar();
      if (done.count(name)) continue;
      const auto& d = deps[name];
      if (std::all_of(d.begin(), d.end(), [&](const auto& x) { return done.count(x) > 0; })) {
        done.insert(name);
      }
    }
  }
  EXPECT_EQ(done.size(), services.size()) << "depends_on has a cycle";
}

TEST_F(Compose, MountedMqdrConfigValidates) {
  const std::string name = mqdr_service();
  const YAML::Node mqdr = service(name);
  const auto cmd = strings(mqdr["command"]);
  auto c = std::find(cmd.begin(), cmd.end(), "-c");
  ASSERT_NE(c, cmd.end());
  ASSERT_NE(c + 1, cmd.end());
  const auto config = host_path(mqdr, *(c + 1));
  ASSERT_TRUE(config) << *(c + 1) << " is not mounted into " << name;
  ASSERT_TRUE(fs::is_regular_file(*config)) << *config;
  EXPECT_EQ(*config, (kDocker / "mqdr.yaml").lexically_normal());

  // `mqdr validate` with exactly the environment compose hands to the container.
  const Env env = service_env(mqdr);
  auto r = run({MQDR_BINARY, "validate", "-c", config->string()}, env, true);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(": ok ("), std::string::npos) << r.output;
  // And without it, it does not (on this host, --strict): the secrets really come from the
  // environment.
  auto bare = run({MQDR_BINARY, "validate", "--strict", "-c", config->string()}, {}, true);
  EXPECT_EQ(bare.code, 2) << bare.output;

  // Every cluster address names a service mqdr waits for.
  const YAML::Node cfg = YAML::LoadFile(config->string());
  std::set<std::string> waits_for;
  for (const auto& dep : mqdr["depends_on"]) waits_for.insert(dep.first.Scalar());
  for (const auto& kv : cfg["clusters"]) {
    std::vector<std::string> addresses;
    const YAML::Node cl = kv.second;
    for (const char* key : {"bootstrap_servers", "uri", "management_uri"}) {
      if (cl[key]) {
        std::stringstream ss(str(cl[key]));
        std::string a;
        while (std::getline(ss, a, ',')) addresses.push_back(trim(a));
      }
    }
    for (const auto& s : cl["servers"]) addresses.push_back(str(s));
    EXPECT_FALSE(addresses.empty()) << kv.first.Scalar();
    for (const auto& a : addresses) {
      const auto [host, port] = host_port(a);
      EXPECT_TRUE(waits_for.count(host)) << kv.first.Scalar() << ": " << a
                                         << " is not a service mqdr depends on";
    }
  }

  // The admin port is the one published, probed by the health check and scraped.
  const auto [admin_host, admin_port] = host_port(str(cfg["daemon"]["admin"]["listen"]));
  EXPECT_EQ(admin_host, "0.0.0.0");
  EXPECT_EQ(env.at("MQDR_ADMIN_PORT"), admin_port);
  const auto ports = strings(mqdr["ports"]);
  ASSERT_EQ(ports.size(), 1U);
  EXPECT_EQ(ports[0], "127.0.0.1:" + admin_port + ":" + admin_port);
  const YAML::Node prom = YAML::LoadFile((kDocker / "prometheus.yml").string());
  bool scraped = false;
  for (const auto& job : prom["scrape_configs"]) {
    for (const auto& sc : job["static_configs"]) {
      for (const auto& t : sc["targets"]) scraped |= str(t) == name + ":" + admin_port;
    }
  }
  EXPECT_TRUE(scraped) << "prometheus.yml does not scrape " << name << ":" << admin_port;
}

TEST_F(Compose, PrometheusConfigAndRulesPassPromtool) {
  ASSERT_TRUE(which("promtool"))
      << "promtool is not installed: run scripts/setup.sh (Debian package prometheus)";
  const YAML::Node prom = service(names_with_image("prom/prometheus:").at(0));
  std::string config_path;
  for (const auto& arg : strings(prom["command"])) {
    if (arg.rfind("--config.file=", 0) == 0) config_path = arg.substr(14);
  }
  ASSERT_FALSE(config_path.empty());
  const auto config = host_path(prom, config_path);
  ASSERT_TRUE(config);
  EXPECT_EQ(*config, (kDocker / "prometheus.yml").lexically_normal());
  // Rule files: relative to the config inside the container, mounted next to it.
  const YAML::Node cfg = YAML::LoadFile(config->string());
  ASSERT_TRUE(cfg["rule_files"] && cfg["rule_files"].size() > 0);
  for (const auto& rf : cfg["rule_files"]) {
    const fs::path in_container = fs::path(config_path).parent_path() / str(rf);
    const auto host = host_path(prom, in_container);
    ASSERT_TRUE(host) << in_container << " is not mounted";
    EXPECT_EQ(*host, (config->parent_path() / str(rf)).lexically_normal());
  }
  auto check = run({"promtool", "check", "config", config->string()});
  EXPECT_EQ(check.code, 0) << check.output;
  auto rules = run({"promtool", "check", "rules", (kDocker / "alerts.yml").string()});
  EXPECT_EQ(rules.code, 0) << rules.output;
  // Every alert fires on the series it watches (tests/unit/ops/alerts.test.yml).
  auto unit = run({"promtool", "test", "rules", "alerts.test.yml"}, {}, false, 120s,
                  kSource / "tests" / "unit" / "ops");
  EXPECT_EQ(unit.code, 0) << unit.output;
  EXPECT_NE(unit.output.find("SUCCESS"), std::string::npos) << unit.output;
}

TEST_F(Compose, AlertsCoverTheOperationalRisks) {
  const YAML::Node alerts = YAML::LoadFile((kDocker / "alerts.yml").string());
  std::map<std::string, std::string> exprs;
  for (const auto& g : alerts["groups"]) {
    for (const auto& r : g["rules"]) {
      exprs[str(r["alert"])] = str(r["expr"]);
      EXPECT_TRUE(r["labels"]["severity"]) << str(r["alert"]);
      EXPECT_TRUE(r["annotations"]["summary"]) << str(r["alert"]);
    }
  }
  auto watched = [&](const std::string& metric) {
    return std::any_of(exprs.begin(), exprs.end(),
                       [&](const auto& kv) { return kv.second.find(metric) != std::string::npos; });
  };
  for (const char* metric : {"mqdr_mirror_lag_seconds", "mqdr_mirror_running", "mqdr_cluster_up",
                             "mqdr_failover_epoch", "mqdr_failover_state",
                             "mqdr_backup_last_success_timestamp_seconds", "up{job=\"mqdr\"}"}) {
    EXPECT_TRUE(watched(metric)) << "no alert on " << metric;
  }
}

const std::vector<std::string> kSpecMetrics = {
    "mqdr_mirror_records_total", "mqdr_mirror_bytes_total",   "mqdr_mirror_lag_records",
    "mqdr_mirror_lag_seconds",   "mqdr_mirror_errors_total",  "mqdr_cluster_up",
    "mqdr_failover_state",       "mqdr_failover_epoch",
    "mqdr_backup_last_success_timestamp_seconds",             "mqdr_build_info"};

TEST_F(Compose, GrafanaIsProvisionedWithTheMqdrDashboard) {
  const YAML::Node grafana = service(names_with_image("grafana/grafana:").at(0));
  const auto provisioning = host_path(grafana, "/etc/grafana/provisioning");
  ASSERT_TRUE(provisioning && fs::is_directory(*provisioning));

  // The datasource points at the Prometheus service.
  const YAML::Node ds =
      YAML::LoadFile((*provisioning / "datasources" / "prometheus.yml").string());
  ASSERT_EQ(ds["datasources"].size(), 1U);
  const YAML::Node source = ds["datasources"][0];
  EXPECT_EQ(str(source["type"]), "prometheus");
  const std::string uid = str(source["uid"]);
  ASSERT_FALSE(uid.empty());
  const auto [prom_host, prom_port] = host_port(str(source["url"]));
  EXPECT_EQ(names_with_image("prom/prometheus:"), std::vector<std::string>{prom_host});
  EXPECT_EQ(prom_port, "9090");

  // The dashboard provider reads a directory that is mounted and holds the dashboard.
  const YAML::Node dp = YAML::LoadFile((*provisioning / "dashboards" / "mqdr.yml").string());
  ASSERT_EQ(dp["providers"].size(), 1U);
  const std::string path = str(dp["providers"][0]["options"]["path"]);
  const auto dashboards = host_path(grafana, path);
  ASSERT_TRUE(dashboards && fs::is_directory(*dashboards)) << path;
  const fs::path file = *dashboards / "mqdr.json";
  ASSERT_TRUE(fs::is_regular_file(file));
  const Env env = service_env(grafana);
  EXPECT_EQ(env.at("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"), path + "/mqdr.json");
  EXPECT_FALSE(env.at("GF_SECURITY_ADMIN_PASSWORD").empty());

  // Every query uses the provisioned datasource and names only metrics mqdr exports; together
  // they show every SPEC metric.
  const auto dash = nlohmann::json::parse(slurp(file));
  EXPECT_EQ(dash["uid"], "mqdr-overview");
  std::set<std::string> used;
  std::size_t queries = 0;
  const std::regex metric(R"(\bmqdr_[a-z_]+)");
  auto check_query = [&](const nlohmann::json& t, const std::string& where) {
    ASSERT_TRUE(t.contains("expr")) << where;
    EXPECT_EQ(t["datasource"]["uid"], uid) << where;
    const std::string expr = t["expr"];
    ++queries;
    for (auto it = std::sregex_iterator(expr.begin(), expr.end(), metric);
         it != std::sregex_iterator(); ++it) {
      used.insert(it->str());
    }
  };
  for (const auto& p : dash["panels"]) {
    if (p["type"] == "row") continue;
    EXPECT_EQ(p["datasource"]["uid"], uid) << p["title"];
    ASSERT_FALSE(p["targets"].empty()) << p["title"];
    for (const auto& t : p["targets"]) check_query(t, p["title"]);
  }
  for (const auto& a : dash["annotations"]["list"]) check_query(a, "annotation");
  for (const auto& v : dash["templating"]["list"]) {
    EXPECT_EQ(v["datasource"]["uid"], uid);
  }
  EXPECT_GE(queries, 10U);
  std::set<std::string> known(kSpecMetrics.begin(), kSpecMetrics.end());
  known.insert({"mqdr_mirror_running", "mqdr_mirror_restarts_total", "mqdr_cluster_probe_seconds"});
  for (const auto& m : used) EXPECT_TRUE(known.count(m)) << "unknown metric " << m;
  for (const auto& m : kSpecMetrics) EXPECT_TRUE(used.count(m)) << "dashboard misses " << m;
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

struct Stage {
  std::string from;
  std::vector<std::pair<std::string, std::string>> instructions;  // (INSTRUCTION, rest)
  std::set<std::string> apt_packages;
};

std::vector<Stage> parse_dockerfile(const fs::path& file) {
  std::vector<Stage> stages;
  std::stringstream in(slurp(file));
  std::string line;
  std::string logical;
  auto flush = [&] {
    std::string l = trim(logical);
    logical.clear();
    if (l.empty() || l[0] == '#') return;
    auto sp = l.find_first_of(" \t");
    std::string ins = l.substr(0, sp);
    std::transform(ins.begin(), ins.end(), ins.begin(), ::toupper);
    std::string rest = sp == std::string::npos ? "" : trim(l.substr(sp));
    if (ins == "FROM") {
      stages.emplace_back();
      stages.back().from = rest;
    }
    if (stages.empty()) return;
    stages.back().instructions.emplace_back(ins, rest);
    if (ins == "RUN") {
      auto at = rest.find("apt-get install");
      if (at != std::string::npos) {
        std::stringstream words(rest.substr(at + 15));
        std::string w;
        while (words >> w && w != "&&") {
          if (w[0] != '-' && w != "\\") stages.back().apt_packages.insert(w);
        }
      }
    }
  };
  while (std::getline(in, line)) {
    const std::string t = trim(line);
    if (!t.empty() && t[0] == '#' && logical.empty()) continue;
    if (!t.empty() && t[0] == '#') continue;  // comment inside a continued instruction
    if (!t.empty() && t.back() == '\\') {
      logical += t.substr(0, t.size() - 1) + " ";
      continue;
    }
    logical += t;
    flush();
  }
  flush();
  return stages;
}

// The Debian package owning `path` (dpkg -S), trying the /usr-merged twin too.
std::string owner(const fs::path& path) {
  std::vector<std::string> candidates = {path.string()};
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (!ec) candidates.push_back(real.string());
  for (std::string c : std::vector<std::string>(candidates)) {
    if (c.rfind("/usr/", 0) == 0) {
      candidates.push_back(c.substr(4));
    } else {
      candidates.push_back("/usr" + c);
    }
  }
  for (const auto& c : candidates) {
    auto r = run({"dpkg", "-S", c});
    if (r.code != 0) continue;
    // "pkg:arch: /path" or "pkg1, pkg2: /path"
    std::string pkgs = r.output.substr(0, r.output.find(": "));
    std::string first = trim(pkgs.substr(0, pkgs.find(',')));
    return first.substr(0, first.find(':'));
  }
  return "";
}

class Dockerfile : public ::testing::Test {
 protected:
  void SetUp() override {
    stages = parse_dockerfile(kDocker / "Dockerfile");
    ASSERT_GE(stages.size(), 2U) << "not a multi-stage build";
    ASSERT_TRUE(which("dpkg")) << "dpkg is missing: these checks run on Debian";
  }
  std::vector<std::string> all(const Stage& s, const std::string& ins) {
    std::vector<std::string> out;
    for (const auto& [i, rest] : s.instructions) {
      if (i == ins) out.push_back(rest);
    }
    return out;
  }
  std::vector<Stage> stages;
};

TEST_F(Dockerfile, MultiStageDebianBookwormNonRootWithHealthcheck) {
  for (const auto& s : stages) {
    EXPECT_EQ(s.from.rfind("debian:bookworm", 0), 0U) << s.from;
  }
  const Stage& final = stages.back();
  const auto users = all(final, "USER");
  ASSERT_EQ(users.size(), 1U);
  EXPECT_NE(users[0].rfind("root", 0), 0U);
  EXPECT_NE(users[0].rfind("0", 0), 0U);
  const auto checks = all(final, "HEALTHCHECK");
  ASSERT_EQ(checks.size(), 1U);
  EXPECT_NE(checks[0].find("/healthz"), std::string::npos);
  // Small: no compiler, no -dev package in the final image.
  for (const auto& p : final.apt_packages) {
    EXPECT_EQ(p.find("-dev"), std::string::npos) << p;
    EXPECT_NE(p, "build-essential");
    EXPECT_NE(p, "cmake");
  }
  bool copies_binary = false;
  for (const auto& c : all(final, "COPY")) copies_binary |= c.find("--from=build") == 0;
  EXPECT_TRUE(copies_binary);
}

TEST_F(Dockerfile, AptPackagesExistInDebian) {
  ASSERT_TRUE(which("apt-cache"));
  std::vector<std::string> argv = {"apt-cache", "show", "--no-all-versions"};
  std::set<std::string> wanted;
  for (const auto& s : stages) wanted.insert(s.apt_packages.begin(), s.apt_packages.end());
  argv.insert(argv.end(), wanted.begin(), wanted.end());
  auto r = run(argv);
  std::set<std::string> found;
  const std::regex package(R"((^|\n)Package: (\S+))");
  for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), package);
       it != std::sregex_iterator(); ++it) {
    found.insert((*it)[2]);
  }
  for (const auto& p : wanted) {
    EXPECT_TRUE(found.count(p)) << p << " is not a Debian package here";
  }
  EXPECT_EQ(r.code, 0) << r.output.substr(0, 2000);
}

// The runtime stage installs the package of every shared library the binary links directly.
TEST_F(Dockerfile, RuntimeStageHasTheBinarysLibraries) {
  const auto& runtime = stages.back().apt_packages;
  auto needed = run({"readelf", "-d", MQDR_BINARY});
  ASSERT_EQ(needed.code, 0) << needed.output;
  auto ldd = run({"ldd", MQDR_BINARY});
  ASSERT_EQ(ldd.code, 0) << ldd.output;
  // Present in every Debian image (apt itself depends on them).
  const std::set<std::string> base = {"libc6", "libgcc-s1", "libstdc++6"};
  const std::regex needed_re(R"(\(NEEDED\)\s+Shared library: \[([^\]]+)\])");
  std::size_t count = 0;
  for (auto it = std::sregex_iterator(needed.output.begin(), needed.output.end(), needed_re);
       it != std::sregex_iterator(); ++it) {
    const std::string lib = (*it)[1];
    if (lib.rfind("libasan", 0) == 0 || lib.rfind("libubsan", 0) == 0) continue;  // sanitizers
    ++count;
    std::smatch m;
    const std::regex line_re(std::regex_replace(lib, std::regex(R"([.+])"), R"(\$&)") +
                             R"( => (\S+))");
    ASSERT_TRUE(std::regex_search(ldd.output, m, line_re)) << lib << " not resolved by ldd";
    const std::string pkg = owner(m[1].str());
    ASSERT_FALSE(pkg.empty()) << "no Debian package owns " << m[1];
    EXPECT_TRUE(runtime.count(pkg) || base.count(pkg))
        << lib << " comes from " << pkg << ", which the runtime stage does not install";
  }
  EXPECT_GE(count, 5U);
}

// The build stage installs the development package of every dependency CMake looks for.
TEST_F(Dockerfile, BuildStageHasEveryBuildDependency) {
  const auto& build = stages.front().apt_packages;
  const std::string cache = slurp(fs::path(MQDR_BUILD_DIR) / "CMakeCache.txt");
  ASSERT_FALSE(cache.empty());
  // Dependencies named in the top-level and area CMakeLists (tests excluded: not built there).
  std::set<std::string> modules;   // pkg_check_modules prefixes
  std::set<std::string> packages;  // find_package names
  std::vector<fs::path> lists = {kSource / "CMakeLists.txt"};
  for (const auto& e : fs::recursive_directory_iterator(kSource / "src")) {
    if (e.path().filename() == "CMakeLists.txt") lists.push_back(e.path());
  }
  std::string top = slurp(kSource / "CMakeLists.txt");
  const std::string tests_block = "if(MQDR_BUILD_TESTS)";
  for (const auto& l : lists) {
    std::string text = slurp(l);
    if (l == kSource / "CMakeLists.txt") {
      auto at = text.find(tests_block);
      if (at != std::string::npos) text.erase(at, text.find("endif()", at) - at);
    }
    const std::regex pcm(R"(pkg_check_modules\((\w+))");
    const std::regex fp(R"(find_package\(([\w-]+))");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), pcm); it != std::sregex_iterator(); ++it) {
      modules.insert((*it)[1]);
    }
    for (auto it = std::sregex_iterator(text.begin(), text.end(), fp); it != std::sregex_iterator(); ++it) {
      packages.insert((*it)[1]);
    }
  }
  packages.erase("PkgConfig");
  packages.erase("Threads");
  ASSERT_GE(modules.size() + packages.size(), 8U);

  auto cache_value = [&](const std::string& key_regex) {
    std::smatch m;
    if (std::regex_search(cache, m, std::regex("\n" + key_regex + ":[A-Z]+=([^\n]+)"))) {
      return m[1].str();
    }
    return std::string();
  };
  auto expect_packaged = [&](const std::string& what, const fs::path& file) {
    const std::string pkg = owner(file);
    ASSERT_FALSE(pkg.empty()) << what << ": no Debian package owns " << file;
    EXPECT_TRUE(build.count(pkg)) << what << " (" << file << ") comes from " << pkg
                                  << ", which the build stage does not install";
  };
  for (const auto& mod : modules) {
    const std::string lib = cache_value("pkgcfg_lib_" + mod + "_[^:]+");
    ASSERT_FALSE(lib.empty()) << mod;
    expect_packaged(mod, lib);
  }
  for (const auto& p : packages) {
    if (p == "OpenSSL") {
      expect_packaged(p, cache_value("OPENSSL_SSL_LIBRARY"));
      continue;
    }
    const fs::path dir = cache_value(std::regex_replace(p, std::regex(R"([-+])"), R"(\$&)") + "_DIR");
    ASSERT_TRUE(fs::is_directory(dir)) << p << ": " << dir;
    fs::path config;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string n = e.path().filename().string();
      if (n.size() > 12 && (n.ends_with("Config.cmake") || n.ends_with("-config.cmake"))) config = e.path();
    }
    ASSERT_FALSE(config.empty()) << p << ": no package config in " << dir;
    expect_packaged(p, config);
  }
}

// The HEALTHCHECK command (and the compose health check of mqdr) really probes /healthz: it
// succeeds against a running mqdr and fails once it is gone.
TEST_F(Dockerfile, HealthcheckCommandProbesARunningMqdr) {
  const auto checks = all(stages.back(), "HEALTHCHECK");
  ASSERT_EQ(checks.size(), 1U);
  auto cmd_at = checks[0].find("CMD ");
  ASSERT_NE(cmd_at, std::string::npos);
  const auto argv_json = nlohmann::json::parse(checks[0].substr(cmd_at + 4));
  std::vector<std::string> argv = argv_json.get<std::vector<std::string>>();

  std::vector<std::string> compose_argv;
  {
    std::vector<std::string> errors;
    Env dotenv = read_dotenv(kDocker / ".env");
    YAML::Node root = resolve(YAML::LoadFile((kDocker / "docker-compose.yml").string()), dotenv, errors);
    for (const auto& kv : root["services"]) {
      if (!kv.second["build"]) continue;
      compose_argv = strings(kv.second["healthcheck"]["test"]);
    }
    ASSERT_TRUE(errors.empty()) << join(errors);
    ASSERT_GE(compose_argv.size(), 2U);
    ASSERT_EQ(compose_argv[0], "CMD");
    compose_argv.erase(compose_argv.begin());
  }

  TempDir dir("health");
  const int port = free_port();
  spit(dir / "mqdr.yaml", "version: 1\n"
                          "daemon:\n"
                          "  state_dir: " + (dir / "state").string() + "\n"
                          "  admin: { listen: 127.0.0.1:" + std::to_string(port) + " }\n"
                          "clusters:\n"
                          "  a: { kind: kafka, bootstrap_servers: 127.0.0.1:1 }\n"
                          "  b: { kind: kafka, bootstrap_servers: 127.0.0.1:2 }\n"
                          "mirrors:\n"
                          "  - { name: m1, source: a, target: b, topics: [t] }\n");
  const Env env = {{"MQDR_ADMIN_PORT", std::to_string(port)}};
  // Nothing listens yet: unhealthy.
  EXPECT_NE(run(argv, env, true, 10s).code, 0);

  Proc daemon = spawn({MQDR_BINARY, "run", "-c", (dir / "mqdr.yaml").string()}, dir / "run.log");
  EXPECT_TRUE(eventually([&] { return run(argv, env, true, 10s).code == 0; }))
      << slurp(dir / "run.log");
  auto compose_check = run(compose_argv, env, true, 10s);
  EXPECT_EQ(compose_check.code, 0) << join(compose_argv) << "\n" << compose_check.output;
  EXPECT_EQ(stop(daemon), 0) << slurp(dir / "run.log");
  EXPECT_NE(run(argv, env, true, 10s).code, 0);
  EXPECT_NE(run(compose_argv, env, true, 10s).code, 0);
}

}  // namespace
}  // namespace mqdr::ops_test
