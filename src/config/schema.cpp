// The key tables of every section, and the one generic walker that applies them. Adding a key
// means adding one row here (and the field in include/mqdr/config.hpp); parsing, the checks and
// docs/configuration.md follow from the row.

#include <algorithm>
#include <cctype>
#include <set>

#include <fmt/format.h>

#include "config/reader.hpp"
#include "config/schema.hpp"
#include "config/uri.hpp"

namespace mqdr::config::detail {

namespace {

// Accessors as captureless lambdas, so that a table row is constant data.
#define MQDR_REF(X, expr) (+[](X & x) -> decltype(auto) { return (expr); })
#define MQDR_CHOICE(X, E, field)                                    \
  (Choice<X>{+[](X& x, int i) { x.field = static_cast<E>(i); }, \
             +[](const X& x) { return static_cast<int>(x.field); }})

const std::vector<std::string_view> kLogLevels = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};

constexpr double kMaxDurationMs = 10.0 * 365 * 86'400'000;  // ten years: anything longer is a typo

const Entry* find_entry(const Entries& entries, std::string_view key) {
  for (const auto& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

std::string kinds_text(Kinds kinds) {
  std::vector<std::string> names;
  for (auto k : {ClusterKind::kafka, ClusterKind::nats, ClusterKind::rabbitmq}) {
    if ((kinds & bit(k)) != 0) names.emplace_back(to_string(k));
  }
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += names[i];
  }
  return out;
}

template <class X>
bool applies(const Spec& spec, const Table<X>& t, std::optional<ClusterKind> kind) {
  return t.kind_of == nullptr || !kind || (spec.kinds & bit(*kind)) != 0;
}

template <class X>
std::vector<std::string> allowed_keys(const Table<X>& t, std::optional<ClusterKind> kind) {
  std::vector<std::string> out;
  for (const auto& key : t.keys) {
    if (applies(key.spec, t, kind)) out.emplace_back(key.spec.name);
  }
  return out;
}

template <class X>
void wrong_kind(Parser& p, const Table<X>& t, const Spec& spec, const Entry& e, ClusterKind kind) {
  std::vector<std::string> instead;
  if (!spec.equiv.empty()) {
    for (const auto& key : t.keys) {
      if (key.spec.equiv == spec.equiv && (key.spec.kinds & bit(kind)) != 0) {
        instead.emplace_back(key.spec.name);
      }
    }
  }
  std::string message =
      fmt::format("'{}' does not apply to a {} {}", e.key, to_string(kind), t.noun);
  if (!instead.empty()) {
    message += "; use '" + instead[0] + "'";
    for (std::size_t i = 1; i < instead.size(); ++i) message += " or '" + instead[i] + "'";
  } else {
    message += fmt::format(" (only to {} {}s)", kinds_text(spec.kinds), t.noun);
  }
  p.error(e.key_mark, e.value.path, message);
}

template <class X>
void apply(Parser& p, const Key<X>& key, const Node& n, X& out) {
  const Spec& spec = key.spec;
  std::visit(
      [&](auto&& set) {
        using S = std::decay_t<decltype(set)>;
        if constexpr (std::is_same_v<S, std::string& (*)(X&)>) {
          if (auto v = p.text(spec, n)) set(out) = std::move(*v);
        } else if constexpr (std::is_same_v<S, std::filesystem::path& (*)(X&)>) {
          if (auto v = p.text(spec, n)) set(out) = std::move(*v);
        } else if constexpr (std::is_same_v<S, int& (*)(X&)>) {
          if (auto v = p.integer(spec, n)) set(out) = static_cast<int>(*v);
        } else if constexpr (std::is_same_v<S, std::int64_t& (*)(X&)>) {
          auto v = spec.type == Type::size ? p.size(spec, n) : p.integer(spec, n);
          if (v) set(out) = *v;
        } else if constexpr (std::is_same_v<S, double& (*)(X&)>) {
          if (auto v = p.number(spec, n)) set(out) = *v;
        } else if constexpr (std::is_same_v<S, bool& (*)(X&)>) {
          if (auto v = p.boolean(spec, n)) set(out) = *v;
        } else if constexpr (std::is_same_v<S, Duration& (*)(X&)>) {
          if (auto v = p.duration(spec, n)) set(out) = *v;
        } else if constexpr (std::is_same_v<S, Secret& (*)(X&)>) {
          auto v = spec.type == Type::secret_file ? p.secret_file(spec, n) : p.secret(spec, n);
          if (v) set(out) = std::move(*v);
        } else if constexpr (std::is_same_v<S, std::vector<std::string>& (*)(X&)>) {
          if (auto v = p.list(spec, n)) set(out) = std::move(*v);
        } else if constexpr (std::is_same_v<S, std::map<std::string, std::string>& (*)(X&)>) {
          if (auto v = p.string_map(spec, n)) set(out) = std::move(*v);
        } else if constexpr (std::is_same_v<S, Choice<X>>) {
          if (auto v = p.choice(spec, n)) set.set(out, *v);
        } else {
          set(p, spec, n, out);
        }
      },
      key.set);
}

// The one walker: every section of the file goes through here.
template <class X>
void parse_section(Parser& p, const Node& n, const Table<X>& t, X& out) {
  p.record(n.path, n.mark);
  // An empty section (`daemon:` with nothing under it) takes every default.
  if (n.yaml.IsDefined() && !n.yaml.IsNull() && !n.yaml.IsMap()) {
    p.error(n.mark, n.path,
            fmt::format("must be a mapping of keys ({}, ...), not {}", t.keys.front().spec.name,
                        Parser::describe(n.yaml)));
    return;
  }
  Entries entries = p.entries(n);
  auto saved_kind = p.kind;
  if (t.kind_of != nullptr) p.kind = t.kind_of(p, entries);

  std::vector<const Entry*> given(t.keys.size(), nullptr);
  for (const auto& e : entries) {
    auto it = std::find_if(t.keys.begin(), t.keys.end(),
                           [&](const Key<X>& k) { return k.spec.name == e.key; });
    if (it == t.keys.end()) {
      p.unknown_key(e, allowed_keys(t, p.kind), n.path);
      continue;
    }
    if (!applies(it->spec, t, p.kind)) {
      wrong_kind(p, t, it->spec, e, *p.kind);
      continue;
    }
    given[static_cast<std::size_t>(it - t.keys.begin())] = &e;
  }

  // X and X_file name the same secret: one of them.
  for (std::size_t i = 0; i < t.keys.size(); ++i) {
    const Spec& spec = t.keys[i].spec;
    if (given[i] == nullptr || spec.type != Type::secret_file) continue;
    std::string_view base = spec.name.substr(0, spec.name.size() - 5);
    for (std::size_t j = 0; j < t.keys.size(); ++j) {
      if (t.keys[j].spec.name == base && given[j] != nullptr) {
        p.error(given[i]->key_mark, given[i]->value.path,
                fmt::format("give either '{}' or '{}', not both", base, spec.name));
        given[i] = nullptr;
      }
    }
  }

  for (std::size_t i = 0; i < t.keys.size(); ++i) {
    const Spec& spec = t.keys[i].spec;
    if (given[i] != nullptr) {
      apply(p, t.keys[i], given[i]->value, out);
    } else if (spec.required && (t.kind_of == nullptr || spec.kinds == kAllKinds ||
                                 (p.kind && (spec.kinds & bit(*p.kind)) != 0))) {
      std::string path = n.path.empty() ? std::string(spec.name)
                                        : n.path + "." + std::string(spec.name);
      p.error(n.mark, path, fmt::format("required key is missing ({})", spec.doc));
    }
  }
  if (t.finish != nullptr) t.finish(p, n, entries, out);
  p.kind = saved_kind;
}

template <class X>
void parse_list(Parser& p, const Spec& spec, const Node& n, const Table<X>& t,
                std::vector<X>& out) {
  p.record(n.path, n.mark);
  if (!n.yaml.IsDefined() || n.yaml.IsNull()) {
    p.error(n.mark, n.path, "has no value; expected a list (write [] for none)");
    return;
  }
  if (!n.yaml.IsSequence()) {
    p.error(n.mark, n.path,
            fmt::format("must be a list of {}s, each item starting with '- {}: ...', not {}",
                        t.noun, t.keys.front().spec.name, Parser::describe(n.yaml)));
    return;
  }
  for (const auto& item : p.items(n)) {
    X x;
    parse_section(p, item, t, x);
    out.push_back(std::move(x));
  }
  if (spec.required && out.empty()) {
    p.error(n.mark, n.path, fmt::format("needs at least one {}", t.noun));
  }
}

// -------------------------------------------------------------------------------------------
// Root

void parse_version(Parser& p, const Spec& spec, const Node& n, Config& c) {
  auto v = p.integer(spec, n);
  if (!v) return;
  if (*v != 1) {
    p.error(n.mark, n.path,
            fmt::format("unsupported version {}; this mqdr reads version 1", *v));
    return;
  }
  c.version = static_cast<int>(*v);
}

void parse_clusters(Parser& p, const Spec& /*spec*/, const Node& n, Config& c) {
  p.record(n.path, n.mark);
  if (!n.yaml.IsDefined() || n.yaml.IsNull()) {
    p.error(n.mark, n.path, "has no value; expected a mapping of cluster names to settings");
    return;
  }
  if (!n.yaml.IsMap()) {
    p.error(n.mark, n.path,
            fmt::format("must be a mapping of cluster names to their settings (e.g. 'kafka-east: "
                        "{{kind: kafka, ...}}'), not {}",
                        Parser::describe(n.yaml)));
    return;
  }
  for (const auto& e : p.entries(n)) {
    if (!valid_name(e.key)) {
      p.error(e.key_mark, e.value.path,
              "a cluster name must start with a letter or digit and contain only letters, "
              "digits, '-' and '_' (at most 64)");
    }
    p.scratch = {};
    ClusterConfig cluster;
    cluster.name = e.key;
    parse_section(p, e.value, cluster_table(), cluster);
    c.clusters[e.key] = std::move(cluster);
  }
}

// -------------------------------------------------------------------------------------------
// daemon

void admin_finish(Parser& p, const Node& n, const Entries& entries, AdminConfig& a) {
  const Entry* tls = find_entry(entries, "tls");
  if (tls != nullptr && a.tls.enabled && (a.tls.cert_file.empty() || a.tls.key_file.empty())) {
    p.error(tls->key_mark, tls->value.path,
            "the admin listener needs 'cert_file' and 'key_file' to serve TLS");
  }
  if (tls != nullptr && !a.tls.enabled && !a.tls.cert_file.empty()) {
    p.warning(tls->key_mark, tls->value.path,
              "'enabled: false': the admin API serves plain HTTP and 'cert_file' is not used");
  }
  if (tls != nullptr && a.tls.enabled && !a.tls.verify_hostname) {
    p.error(tls->key_mark, tls->value.path,
            "'verify_hostname: false' is not supported for the admin listener: mqdr's CLI always "
            "checks the certificate's name; set 'server_name' to a name the certificate carries");
  }
  const Entry* listen = find_entry(entries, "listen");
  if (listen == nullptr || a.tls.enabled) return;
  std::string host = a.listen.substr(0, a.listen.rfind(':'));
  bool loopback = host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
  if (!loopback && !a.token.empty()) {
    p.warning(listen->value.mark, listen->value.path,
              "the admin API is reachable from other hosts without TLS: the bearer token "
              "crosses the network in clear text; add 'tls' or listen on 127.0.0.1");
  }
  (void)n;
}

void admin_token_file(Parser& p, const Spec& spec, const Node& n, AdminConfig& a) {
  std::string path;
  if (auto secret = p.secret_file(spec, n, &path)) {
    a.token = std::move(*secret);
    a.token_file = path;
  }
}

template <class X>
void parse_tls(Parser& p, const Spec& /*spec*/, const Node& n, X& x) {
  x.tls.enabled = true;
  parse_section(p, n, tls_table(), x.tls);
}

void tls_finish(Parser& p, const Node& n, const Entries& entries, TlsConfig& t) {
  if ((find_entry(entries, "cert_file") != nullptr) != (find_entry(entries, "key_file") != nullptr)) {
    p.error(n.mark, n.path,
            "'cert_file' and 'key_file' go together: a client certificate needs its key");
  }
  const Entry* password = find_entry(entries, "key_password");
  if (password == nullptr) password = find_entry(entries, "key_password_file");
  if (password != nullptr && find_entry(entries, "key_file") == nullptr) {
    p.error(password->key_mark, password->value.path, "a key password needs 'key_file'");
  }
  const Entry* verify = find_entry(entries, "verify");
  if (verify != nullptr && !t.verify) {
    p.warning(verify->value.mark, verify->value.path,
              "certificates are not verified: anyone on the path can pose as the server");
  }
}

// -------------------------------------------------------------------------------------------
// clusters

std::optional<ClusterKind> cluster_kind_of(Parser& p, const Entries& entries) {
  const Entry* kind = find_entry(entries, "kind");
  if (kind == nullptr) return std::nullopt;
  auto text = p.peek(kind->value);
  if (!text) return std::nullopt;
  for (auto k : {ClusterKind::kafka, ClusterKind::nats, ClusterKind::rabbitmq}) {
    if (*text == to_string(k)) return k;
  }
  return std::nullopt;
}

bool secret_property(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view word : {"password", "secret", "sasl.jaas.config", "ssl.key"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

void parse_bootstrap(Parser& p, const Spec& spec, const Node& n, ClusterConfig& c) {
  auto items = p.list_or_csv(spec, n);
  if (!items) return;
  std::string joined;
  for (const auto& [node, text] : *items) {
    if (text.empty()) {
      p.error(node.mark, node.path, "an empty server address (look for a stray ',')");
      continue;
    }
    if (text.find("://") != std::string::npos) {
      p.error(node.mark, node.path,
              "write host:port without a protocol; the protocol is the property "
              "'security.protocol'");
      continue;
    }
    std::string why;
    if (!parse_host_port(text, false, &why)) {
      auto shown = p.quote(node.path, text);
      p.error(node.mark, node.path, why + (shown.empty() ? "" : ", got" + shown));
      continue;
    }
    if (!joined.empty()) joined += ',';
    joined += text;
  }
  c.kafka.bootstrap_servers = joined;
}

void parse_properties(Parser& p, const Spec& /*spec*/, const Node& n, ClusterConfig& c) {
  p.record(n.path, n.mark);
  if (!n.yaml.IsMap()) {
    p.error(n.mark, n.path,
            "must be a mapping of librdkafka property names to values, not " +
                Parser::describe(n.yaml));
    return;
  }
  auto entries = p.entries(n);
  std::set<std::string> secrets;
  Spec file_spec;
  file_spec.name = "properties";
  file_spec.type = Type::secret_file;
  for (const auto& e : entries) {
    bool name_ok = !e.key.empty() && std::all_of(e.key.begin(), e.key.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '.' || ch == '_' ||
             ch == '-';
    });
    if (!name_ok) {
      p.error(e.key_mark, e.value.path,
              "not a librdkafka property name (letters, digits, '.', '_', '-')");
      continue;
    }
    if (e.key == "bootstrap.servers" || e.key == "metadata.broker.list") {
      p.error(e.key_mark, e.value.path, "set the cluster's 'bootstrap_servers' instead");
      continue;
    }
    constexpr std::string_view kFile = "_file";
    if (e.key.size() > kFile.size() && e.key.ends_with(kFile)) {
      std::string base = e.key.substr(0, e.key.size() - kFile.size());
      if (find_entry(entries, base) != nullptr) {
        p.error(e.key_mark, e.value.path,
                fmt::format("give either '{}' or '{}', not both", base, e.key));
        continue;
      }
      if (auto secret = p.secret_file(file_spec, e.value)) {
        c.kafka.properties[base] = secret->reveal();
        secrets.insert(base);
      }
      continue;
    }
    if (auto value = p.scalar(e.value, "a string, number or boolean", secret_property(e.key))) {
      c.kafka.properties[e.key] = value->text;
      if (secret_property(e.key)) secrets.insert(e.key);
    }
  }
  c.kafka.secret_properties.assign(secrets.begin(), secrets.end());
}

void parse_nats_servers(Parser& p, const Spec& spec, const Node& n, ClusterConfig& c) {
  auto items = p.list_or_csv(spec, n);
  if (!items) return;
  std::vector<std::string> servers;
  for (const auto& [node, text] : *items) {
    // Server URLs are never echoed: they may carry a token or a password.
    if (text.empty()) {
      p.error(node.mark, node.path, "an empty server address (look for a stray ',')");
      continue;
    }
    std::string why;
    if (text.find("://") != std::string::npos) {
      auto url = parse_url(text, &why);
      if (!url) {
        p.error(node.mark, node.path, "not a valid server URL: " + why);
        continue;
      }
      if (url->scheme != "nats" && url->scheme != "tls" && url->scheme != "ws" &&
          url->scheme != "wss") {
        p.error(node.mark, node.path,
                "the scheme must be nats://, tls://, ws:// or wss://");
        continue;
      }
      if (url->has_userinfo) {
        p.error(node.mark, node.path,
                "credentials do not belong in a server URL (they would end up in logs); use "
                "'user' with 'password_file', 'token_file' or 'credentials_file'");
        continue;
      }
      if (url->scheme == "tls" || url->scheme == "wss") c.tls.enabled = true;
    } else if (!parse_host_port(text, false, &why)) {
      p.error(node.mark, node.path, "not a valid server address: " + why);
      continue;
    }
    servers.push_back(text);
  }
  c.nats.servers = std::move(servers);
}

void parse_amqp(Parser& p, const Spec& /*spec*/, const Node& n, ClusterConfig& c) {
  auto s = p.scalar(n, "a string", true);
  if (!s) return;
  std::string why;
  auto uri = parse_amqp_uri(s->text, &why);
  if (!uri) {
    p.error(n.mark, n.path, "not a valid AMQP URI: " + why);
    return;
  }
  c.rabbitmq.uri = uri->without_password;
  c.rabbitmq.host = uri->host;
  c.rabbitmq.port = uri->port;
  c.rabbitmq.vhost = uri->vhost;
  if (uri->has_user) {
    c.rabbitmq.user = uri->user;
    p.scratch.uri_user = true;
  }
  if (uri->has_password) {
    c.rabbitmq.password = Secret(uri->password);
    p.scratch.uri_password = true;
  }
  if (uri->tls) {
    c.tls.enabled = true;
    p.scratch.uri_tls = true;
  }
}

void parse_user(Parser& p, const Spec& spec, const Node& n, ClusterConfig& c) {
  auto user = p.text(spec, n);
  if (!user) return;
  if (!p.kind || *p.kind == ClusterKind::nats) c.nats.user = *user;
  if (!p.kind || *p.kind == ClusterKind::rabbitmq) c.rabbitmq.user = *user;
}

void set_password(Parser& p, ClusterConfig& c, Secret secret) {
  if (!p.kind || *p.kind == ClusterKind::nats) c.nats.password = secret;
  if (!p.kind || *p.kind == ClusterKind::rabbitmq) c.rabbitmq.password = secret;
}

void parse_password(Parser& p, const Spec& spec, const Node& n, ClusterConfig& c) {
  if (auto secret = p.secret(spec, n)) set_password(p, c, std::move(*secret));
}

void parse_password_file(Parser& p, const Spec& spec, const Node& n, ClusterConfig& c) {
  if (auto secret = p.secret_file(spec, n)) set_password(p, c, std::move(*secret));
}

void cluster_finish(Parser& p, const Node& n, const Entries& entries, ClusterConfig& c) {
  if (!p.kind) return;
  const Entry* user = find_entry(entries, "user");
  const Entry* password = find_entry(entries, "password");
  if (password == nullptr) password = find_entry(entries, "password_file");
  if (*p.kind == ClusterKind::rabbitmq) {
    if (user != nullptr && p.scratch.uri_user) {
      p.error(user->key_mark, user->value.path,
              "the user is already given in 'uri'; keep one of them");
    }
    if (password != nullptr && p.scratch.uri_password) {
      p.error(password->key_mark, password->value.path,
              fmt::format("the password is also given in 'uri'; keep only '{}'", password->key));
    }
    if (password != nullptr && user == nullptr && !p.scratch.uri_user && !c.rabbitmq.uri.empty()) {
      p.error(password->key_mark, password->value.path,
              "a password needs a user: write 'amqp[s]://USER@host/...' or set 'user'");
    }
    // Like every AMQP client (and rabbitmq-c's amqp_parse_url): no user means guest/guest.
    if (user == nullptr && !p.scratch.uri_user && !c.rabbitmq.uri.empty()) {
      c.rabbitmq.user = "guest";
      if (password == nullptr && !p.scratch.uri_password) c.rabbitmq.password = Secret("guest");
    }
    const Entry* tls = find_entry(entries, "tls");
    const Entry* uri = find_entry(entries, "uri");
    if (tls != nullptr && uri != nullptr && !p.scratch.uri_tls && c.tls.enabled &&
        !c.rabbitmq.uri.empty()) {
      p.error(tls->key_mark, tls->value.path,
              "TLS is configured but 'uri' uses amqp://; write amqps:// (port 5671 by default)");
    }
    if (tls != nullptr && p.scratch.uri_tls && !c.tls.enabled) {
      p.error(tls->key_mark, tls->value.path,
              "'uri' uses amqps://, which needs TLS; remove 'enabled: false'");
    }
  } else if (*p.kind == ClusterKind::nats) {
    std::vector<std::string> ways;
    for (const char* key : {"credentials_file", "nkey_seed_file"}) {
      if (find_entry(entries, key) != nullptr) ways.emplace_back(key);
    }
    if (find_entry(entries, "token") != nullptr || find_entry(entries, "token_file") != nullptr) {
      ways.emplace_back("token");
    }
    if (user != nullptr) ways.emplace_back("user");
    if (ways.size() > 1) {
      p.error(n.mark, n.path,
              fmt::format("choose one way to authenticate, not '{}' and '{}': credentials_file, "
                          "nkey_seed_file, token (or token_file), or user with password",
                          ways[0], ways[1]));
    }
    if (user != nullptr && password == nullptr) {
      p.error(user->key_mark, user->value.path, "'user' needs 'password' or 'password_file'");
    }
    if (password != nullptr && user == nullptr) {
      p.error(password->key_mark, password->value.path, "a password needs 'user'");
    }
    const Entry* tls = find_entry(entries, "tls");
    bool tls_url = std::any_of(c.nats.servers.begin(), c.nats.servers.end(), [](const auto& s) {
      return s.rfind("tls://", 0) == 0 || s.rfind("wss://", 0) == 0;
    });
    if (tls != nullptr && tls_url && !c.tls.enabled) {
      p.error(tls->key_mark, tls->value.path,
              "a tls:// or wss:// server needs TLS; remove 'enabled: false'");
    }
    // The NATS client checks one expected name for every server (tls.server_name, else the
    // first server's host): servers under different names cannot all pass.
    const Entry* tls_at = tls != nullptr ? tls : find_entry(entries, "servers");
    if (tls_at != nullptr && c.tls.enabled && c.tls.verify && c.tls.verify_hostname &&
        c.tls.server_name.empty()) {
      auto host_of = [](std::string_view url) {
        if (auto s = url.find("://"); s != std::string_view::npos) url.remove_prefix(s + 3);
        if (auto at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
        if (auto colon = url.rfind(':'); colon != std::string_view::npos) url = url.substr(0, colon);
        return std::string(url);
      };
      for (const auto& s : c.nats.servers) {
        if (host_of(s) != host_of(c.nats.servers.front())) {
          p.error(tls_at->key_mark, tls_at->value.path,
                  fmt::format("the servers have different host names ('{}', '{}') but the NATS "
                              "client checks one name for all of them: set 'server_name' to a "
                              "name every server's certificate carries",
                              host_of(c.nats.servers.front()), host_of(s)));
          break;
        }
      }
    }
  } else if (*p.kind == ClusterKind::kafka) {
    auto protocol = c.kafka.properties.find("security.protocol");
    if (protocol != c.kafka.properties.end()) {
      std::string value = protocol->second;
      for (char& ch : value) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (value == "SSL" || value == "SASL_SSL") {
        c.tls.enabled = true;
      } else if (const Entry* tls = find_entry(entries, "tls"); tls != nullptr && c.tls.enabled) {
        p.error(tls->key_mark, tls->value.path,
                fmt::format("TLS is configured but properties.security.protocol is '{}'; use SSL "
                            "or SASL_SSL", protocol->second));
      }
    }
    if (const Entry* tls = find_entry(entries, "tls");
        tls != nullptr && !c.tls.server_name.empty()) {
      p.error(tls->key_mark, tls->value.path,
              "'server_name' is not supported for Kafka: librdkafka checks each broker's "
              "advertised host name; advertise names the certificates carry, or set "
              "'verify_hostname: false'");
    }
  }
}

// -------------------------------------------------------------------------------------------
// mirrors and backups

std::optional<ClusterKind> kind_of_cluster_key(Parser& p, const Entries& entries,
                                               std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    const Entry* e = find_entry(entries, key);
    if (e == nullptr) continue;
    auto name = p.peek(e->value);
    if (!name) continue;
    if (const auto* cluster = p.cfg.cluster(*name)) return cluster->kind;
  }
  return std::nullopt;
}

std::optional<ClusterKind> mirror_kind_of(Parser& p, const Entries& entries) {
  return kind_of_cluster_key(p, entries, {"source", "target"});
}

std::optional<ClusterKind> backup_kind_of(Parser& p, const Entries& entries) {
  return kind_of_cluster_key(p, entries, {"cluster"});
}

void parse_refresh(Parser& p, const Spec& spec, const Node& n, MirrorConfig& m) {
  if (auto d = p.duration(spec, n)) {
    m.kafka.refresh_interval = *d;
    m.nats.refresh_interval = *d;
    m.rabbitmq.refresh_interval = *d;
  }
}

void mirror_finish(Parser& p, const Node& n, const Entries& /*entries*/, MirrorConfig& m) {
  if (!p.kind) return;
  m.kind = *p.kind;
  if (m.kind == ClusterKind::rabbitmq && m.rabbitmq.exchanges.empty() &&
      m.rabbitmq.queues.empty()) {
    p.error(n.mark, n.path,
            "a rabbitmq mirror needs 'exchanges' (copy what is routed through them) or "
            "'queues' (move their messages), or both");
  }
}

void backup_finish(Parser& p, const Node& n, const Entries& entries, BackupPlanConfig& b) {
  if (p.kind) {
    b.kind = *p.kind;
    if (b.kind == ClusterKind::rabbitmq && b.exchanges.empty() && b.queues.empty()) {
      p.error(n.mark, n.path, "a rabbitmq backup plan needs 'exchanges' or 'queues', or both");
    }
  }
  const Entry* incremental = find_entry(entries, "incremental_every");
  if (incremental != nullptr && b.incremental_every >= b.full_every) {
    p.warning(incremental->value.mark, incremental->value.path,
              "no incremental backup will run: 'incremental_every' is not shorter than "
              "'full_every'");
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The tables

// Rows use designated initializers and leave out what does not apply; every member has a default.
// GCC 12 still warns about the omitted members under -Wextra; that warning is off for them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

const Table<Config>& root_table() {
  static const Table<Config> t{
      .title = "top level",
      .noun = "config",
      .doc = "The file is one YAML mapping with these keys. Only `version` is required; a config "
             "without mirrors, failover groups and backup plans is valid but does nothing (a "
             "warning says so).",
      .keys = {
          {{.name = "version", .type = Type::integer, .required = true,
            .doc = "format version of this file; must be 1"},
           Custom<Config>(parse_version)},
          {{.name = "daemon", .type = Type::section, .child = "daemon",
            .doc = "the process: state directory, admin API, logging"},
           Custom<Config>(+[](Parser& p, const Spec&, const Node& n, Config& c) {
             parse_section(p, n, daemon_table(), c.daemon);
           })},
          {{.name = "clusters", .type = Type::named_sections, .child = "clusters.NAME",
            .doc = "the brokers, by name; every other section refers to them by that name"},
           Custom<Config>(parse_clusters)},
          {{.name = "mirrors", .type = Type::sections, .child = "mirrors[]",
            .doc = "continuous copies from a source cluster to a target cluster of the same kind"},
           Custom<Config>(+[](Parser& p, const Spec& s, const Node& n, Config& c) {
             parse_list(p, s, n, mirror_table(), c.mirrors);
           })},
          {{.name = "failover", .type = Type::sections, .child = "failover[]",
            .doc = "groups of clusters that fail over and back together"},
           Custom<Config>(+[](Parser& p, const Spec& s, const Node& n, Config& c) {
             parse_list(p, s, n, failover_table(), c.failover);
           })},
          {{.name = "backups", .type = Type::sections, .child = "backups[]",
            .doc = "backup plans: scheduled full and incremental backups of one cluster to files"},
           Custom<Config>(+[](Parser& p, const Spec& s, const Node& n, Config& c) {
             parse_list(p, s, n, backup_table(), c.backups);
           })},
      }};
  return t;
}

const Table<DaemonConfig>& daemon_table() {
  static const Table<DaemonConfig> t{
      .title = "daemon",
      .noun = "daemon section",
      .doc = "The process itself.",
      .keys = {
          {{.name = "state_dir", .type = Type::path,
            .doc = "failover state (epochs) and positions; must survive restarts and be writable "
                   "by the daemon, which locks it so that one process at a time uses it"},
           MQDR_REF(DaemonConfig, x.state_dir)},
          {{.name = "admin", .type = Type::section, .child = "daemon.admin",
            .doc = "the HTTP admin API: health, readiness, metrics, status, failover"},
           Custom<DaemonConfig>(+[](Parser& p, const Spec&, const Node& n, DaemonConfig& d) {
             parse_section(p, n, admin_table(), d.admin);
           })},
          {{.name = "log", .type = Type::section, .child = "daemon.log", .doc = "logging"},
           Custom<DaemonConfig>(+[](Parser& p, const Spec&, const Node& n, DaemonConfig& d) {
             parse_section(p, n, log_table(), d.log);
           })},
          {{.name = "shutdown_timeout", .type = Type::duration, .min = 0, .min_exclusive = true,
            .max = kMaxDurationMs,
            .doc = "on SIGTERM, how long workers may take to drain and commit before they are "
                   "stopped"},
           MQDR_REF(DaemonConfig, x.shutdown_timeout)},
      }};
  return t;
}

const Table<AdminConfig>& admin_table() {
  static const Table<AdminConfig> t{
      .title = "daemon.admin",
      .noun = "admin section",
      .doc = "The HTTP admin API: `GET /healthz`, `/readyz`, `/metrics`, `/v1/status`, and "
             "`POST /v1/failover/{group}`, `/v1/failback/{group}`. Every POST needs "
             "`Authorization: Bearer TOKEN`; without a token, POSTs are refused.",
      .keys = {
          {{.name = "listen", .type = Type::host_port,
            .doc = "address and port to listen on (`[::1]:9780` for IPv6); an address other "
                   "than loopback without `tls` gets a warning"},
           MQDR_REF(AdminConfig, x.listen)},
          {{.name = "token_file", .type = Type::secret_file,
            .doc = "file holding the bearer token that every POST must present"},
           Custom<AdminConfig>(admin_token_file)},
          {{.name = "token", .type = Type::secret,
            .doc = "the bearer token itself, usually `${VARIABLE}`; prefer `token_file`"},
           MQDR_REF(AdminConfig, x.token)},
          {{.name = "tls", .type = Type::section, .child = "tls",
            .doc = "serve HTTPS; needs `cert_file` and `key_file`. `ca_file` is what mqdr's own "
                   "commands (`mqdr status`, ...) trust when they call the listener (the "
                   "certificate itself when it is self-signed); `server_name` the name they "
                   "expect in it. No client certificate is asked for: POSTs need the token"},
           Custom<AdminConfig>(parse_tls<AdminConfig>)},
      },
      .finish = admin_finish};
  return t;
}

const Table<LogConfig>& log_table() {
  static const Table<LogConfig> t{
      .title = "daemon.log",
      .noun = "log section",
      .doc = "Logs go to standard error (the journal under systemd). Every line names its "
             "mirror, cluster, group or plan.",
      .keys = {
          {{.name = "level", .type = Type::choice, .choices = kLogLevels,
            .doc = "the least severe level written"},
           Choice<LogConfig>{
               +[](LogConfig& x, int i) {
                 x.level = std::string(kLogLevels[static_cast<std::size_t>(i)]);
               },
               +[](const LogConfig& x) {
                 return static_cast<int>(
                     std::find(kLogLevels.begin(), kLogLevels.end(), x.level) - kLogLevels.begin());
               }}},
          {{.name = "format", .type = Type::choice, .choices = {"text", "json"},
            .doc = "`text` for people, `json` (one object per line) for log collectors"},
           MQDR_CHOICE(LogConfig, LogFormat, format)},
      }};
  return t;
}

const Table<TlsConfig>& tls_table() {
  static const Table<TlsConfig> t{
      .title = "tls",
      .noun = "tls section",
      .doc = "TLS settings of a cluster connection (`clusters.NAME.tls`) or of the admin "
             "listener (`daemon.admin.tls`). Writing a `tls` section turns TLS on; so does an "
             "`amqps://` uri, a `tls://` or `wss://` NATS server, or a Kafka `security.protocol` "
             "of `SSL` or `SASL_SSL`.",
      .keys = {
          {{.name = "enabled", .type = Type::boolean,
            .def = "true when the section is present",
            .doc = "turn TLS off while keeping the section (the admin listener then serves plain "
                   "HTTP, with a warning)"},
           MQDR_REF(TlsConfig, x.enabled)},
          {{.name = "ca_file", .type = Type::file,
            .doc = "PEM bundle of the certificate authorities that signed the server's "
                   "certificate; empty = the system's. For the admin listener: what mqdr's CLI "
                   "trusts when it calls the daemon"},
           MQDR_REF(TlsConfig, x.ca_file)},
          {{.name = "cert_file", .type = Type::file,
            .doc = "certificate (PEM) presented to the other side; goes with `key_file`"},
           MQDR_REF(TlsConfig, x.cert_file)},
          {{.name = "key_file", .type = Type::private_file,
            .doc = "private key (PEM) of `cert_file`"},
           MQDR_REF(TlsConfig, x.key_file)},
          {{.name = "key_password", .type = Type::secret,
            .doc = "password of an encrypted `key_file`"},
           MQDR_REF(TlsConfig, x.key_password)},
          {{.name = "key_password_file", .type = Type::secret_file,
            .doc = "file holding the password of `key_file`"},
           MQDR_REF(TlsConfig, x.key_password)},
          {{.name = "verify", .type = Type::boolean,
            .doc = "verify the server's certificate chain; `false` only for tests (warned)"},
           MQDR_REF(TlsConfig, x.verify)},
          {{.name = "verify_hostname", .type = Type::boolean,
            .doc = "check the server's name against its certificate"},
           MQDR_REF(TlsConfig, x.verify_hostname)},
          {{.name = "server_name", .type = Type::string,
            .doc = "name sent (SNI) and expected in the certificate; empty = the host of the "
                   "address. Not for Kafka: librdkafka always checks each broker's advertised "
                   "host"},
           MQDR_REF(TlsConfig, x.server_name)},
      },
      .finish = tls_finish};
  return t;
}

const Table<ClusterConfig>& cluster_table() {
  static const Table<ClusterConfig> t{
      .title = "clusters.NAME",
      .noun = "cluster",
      .doc = "One broker cluster. NAME starts with a letter or digit and holds letters, digits, "
             "`-` and `_` (at most 64); it appears in metrics, logs and the clients file. The "
             "keys allowed depend on `kind`.",
      .keys = {
          {{.name = "kind", .type = Type::choice, .required = true,
            .choices = {"kafka", "nats", "rabbitmq"}, .doc = "the broker"},
           MQDR_CHOICE(ClusterConfig, ClusterKind, kind)},
          {{.name = "bootstrap_servers", .type = Type::kafka_servers, .required = true,
            .kinds = kKafka, .equiv = "servers",
            .doc = "`host:port,host:port` or a list of `host:port`"},
           Custom<ClusterConfig>(parse_bootstrap)},
          {{.name = "properties", .type = Type::map, .kinds = kKafka, .def = "{}",
            .doc = "librdkafka properties, handed over unchanged (SASL, SSL, timeouts). A name "
                   "ending in `_file` reads the property's value from that file (e.g. "
                   "`sasl.password_file`). Values of properties whose name contains `password`, "
                   "`secret`, `sasl.jaas.config` or `ssl.key` are secrets"},
           Custom<ClusterConfig>(parse_properties)},
          {{.name = "servers", .type = Type::nats_servers, .list = true, .required = true,
            .kinds = kNats, .equiv = "servers",
            .doc = "`nats://host:port` URLs (also `tls://`, `ws://`, `wss://`); no credentials "
                   "in them"},
           Custom<ClusterConfig>(parse_nats_servers)},
          {{.name = "credentials_file", .type = Type::private_file, .kinds = kNats,
            .doc = "`.creds` file (user JWT and NKey seed)"},
           MQDR_REF(ClusterConfig, x.nats.credentials_file)},
          {{.name = "nkey_seed_file", .type = Type::private_file, .kinds = kNats,
            .doc = "file holding an NKey seed"},
           MQDR_REF(ClusterConfig, x.nats.nkey_seed_file)},
          {{.name = "token", .type = Type::secret, .kinds = kNats,
            .doc = "authentication token, usually `${VARIABLE}`"},
           MQDR_REF(ClusterConfig, x.nats.token)},
          {{.name = "token_file", .type = Type::secret_file, .kinds = kNats,
            .doc = "file holding the authentication token"},
           MQDR_REF(ClusterConfig, x.nats.token)},
          {{.name = "uri", .type = Type::amqp_uri, .required = true, .kinds = kRabbit,
            .equiv = "servers",
            .doc = "`amqp[s]://[user[:password]@]host[:port][/vhost]`; the password is moved "
                   "out of it and never shown; the vhost is percent-decoded (`%2F` for `/`), "
                   "`/` when absent; ports default to 5672 (amqp) and 5671 (amqps); without a user, "
                   "`guest` with password `guest` (RabbitMQ's default account)"},
           Custom<ClusterConfig>(parse_amqp)},
          {{.name = "user", .type = Type::string, .kinds = kNats | kRabbit,
            .doc = "user name (RabbitMQ: instead of the one in `uri`)"},
           Custom<ClusterConfig>(parse_user)},
          {{.name = "password", .type = Type::secret, .kinds = kNats | kRabbit,
            .doc = "password of `user`, usually `${VARIABLE}`"},
           Custom<ClusterConfig>(parse_password)},
          {{.name = "password_file", .type = Type::secret_file, .kinds = kNats | kRabbit,
            .doc = "file holding the password"},
           Custom<ClusterConfig>(parse_password_file)},
          {{.name = "domain", .type = Type::string, .kinds = kNats,
            .doc = "JetStream domain of this cluster"},
           MQDR_REF(ClusterConfig, x.nats.domain)},
          {{.name = "api_prefix", .type = Type::string, .kinds = kNats,
            .doc = "JetStream API prefix, when it is not the default `$JS.API`"},
           MQDR_REF(ClusterConfig, x.nats.api_prefix)},
          {{.name = "management_uri", .type = Type::url, .kinds = kRabbit,
            .doc = "`http[s]://host:port` of the management API (definitions, queue depths); "
                   "it uses the AMQP user and password; empty = no management API"},
           MQDR_REF(ClusterConfig, x.rabbitmq.management_uri)},
          {{.name = "tls", .type = Type::section, .child = "tls",
            .doc = "TLS for the connections to this cluster"},
           Custom<ClusterConfig>(parse_tls<ClusterConfig>)},
      },
      .kind_of = cluster_kind_of,
      .finish = cluster_finish};
  return t;
}

const Table<MirrorConfig>& mirror_table() {
  static const Table<MirrorConfig> t{
      .title = "mirrors[]",
      .noun = "mirror",
      .doc = "A continuous copy from `source` to `target`, two different clusters of one kind; "
             "the kind of the source decides which keys apply. Patterns are ECMAScript regular "
             "expressions matched against whole names (`orders` matches only `orders`; "
             "`orders\\..*` matches `orders.eu`).",
      .keys = {
          {{.name = "name", .type = Type::name, .required = true,
            .doc = "unique among mirrors; appears in metrics and logs"},
           MQDR_REF(MirrorConfig, x.name)},
          {{.name = "source", .type = Type::cluster, .required = true,
            .doc = "the cluster to copy from"},
           MQDR_REF(MirrorConfig, x.source)},
          {{.name = "target", .type = Type::cluster, .required = true,
            .doc = "the cluster to copy to: same kind as `source`, not the same cluster"},
           MQDR_REF(MirrorConfig, x.target)},
          {{.name = "topics", .type = Type::regex, .list = true, .required = true,
            .kinds = kKafka, .equiv = "items", .doc = "patterns of the topics to copy"},
           MQDR_REF(MirrorConfig, x.kafka.topics)},
          {{.name = "exclude_topics", .type = Type::regex, .list = true, .kinds = kKafka,
            .doc = "patterns of topics not to copy even though `topics` matches them"},
           MQDR_REF(MirrorConfig, x.kafka.exclude_topics)},
          {{.name = "rename", .type = Type::rename, .kinds = kKafka,
            .doc = "name of the target topic: `{topic}` (same name) or e.g. `{source}.{topic}` "
                   "(the MirrorMaker 2 default policy); placeholders `{topic}` (required), "
                   "`{source}`, `{target}` (cluster names)"},
           MQDR_REF(MirrorConfig, x.kafka.rename)},
          {{.name = "sync_topic_configs", .type = Type::boolean, .kinds = kKafka,
            .equiv = "sync",
            .doc = "create target topics with the source's partition count and configs, and "
                   "keep the configs in step"},
           MQDR_REF(MirrorConfig, x.kafka.sync_topic_configs)},
          {{.name = "groups", .type = Type::regex, .list = true, .kinds = kKafka,
            .equiv = "positions",
            .doc = "patterns of consumer groups whose committed offsets are translated to the "
                   "target, so that consumers resume there after a failover"},
           MQDR_REF(MirrorConfig, x.kafka.groups)},
          {{.name = "delivery", .type = Type::choice, .kinds = kKafka,
            .choices = {"at_least_once", "exactly_once"},
            .doc = "`exactly_once` writes with a transactional producer and reads "
                   "`read_committed`"},
           MQDR_CHOICE(MirrorConfig, Delivery, kafka.delivery)},
          {{.name = "dead_letter_topic", .type = Type::topic_name, .kinds = kKafka,
            .doc = "target topic for records the target rejects (too large, ...); empty = the "
                   "mirror stops on such a record"},
           MQDR_REF(MirrorConfig, x.kafka.dead_letter_topic)},
          {{.name = "group_sync_interval", .type = Type::duration, .kinds = kKafka, .min = 0,
            .min_exclusive = true, .max = kMaxDurationMs,
            .doc = "how often translated group offsets are committed on the target"},
           MQDR_REF(MirrorConfig, x.kafka.group_sync_interval)},
          {{.name = "heartbeat_interval", .type = Type::duration, .kinds = kKafka, .min = 0,
            .max = kMaxDurationMs,
            .doc = "how often a heartbeat record measures end-to-end lag; `0` = none"},
           MQDR_REF(MirrorConfig, x.kafka.heartbeat_interval)},
          {{.name = "consumer_properties", .type = Type::map, .kinds = kKafka,
            .doc = "extra librdkafka properties of the consumer on the source"},
           MQDR_REF(MirrorConfig, x.kafka.consumer_properties)},
          {{.name = "producer_properties", .type = Type::map, .kinds = kKafka,
            .doc = "extra librdkafka properties of the producer on the target"},
           MQDR_REF(MirrorConfig, x.kafka.producer_properties)},
          {{.name = "streams", .type = Type::regex, .list = true, .required = true,
            .kinds = kNats, .equiv = "items",
            .doc = "names or patterns of the JetStream streams to copy"},
           MQDR_REF(MirrorConfig, x.nats.streams)},
          {{.name = "mode", .type = Type::choice, .kinds = kNats, .choices = {"relay", "native"},
            .doc = "`relay`: mqdr reads and publishes; `native`: the target stream sources from "
                   "the source stream (JetStream does the copy, mqdr sets it up and watches)"},
           MQDR_CHOICE(MirrorConfig, NatsMode, nats.mode)},
          {{.name = "consumers", .type = Type::regex, .list = true, .kinds = kNats,
            .equiv = "positions",
            .doc = "patterns of durable consumers whose positions are carried over to the "
                   "target"},
           MQDR_REF(MirrorConfig, x.nats.consumers)},
          {{.name = "consumer_sync_interval", .type = Type::duration, .kinds = kNats, .min = 0,
            .min_exclusive = true, .max = kMaxDurationMs,
            .doc = "how often consumer positions are carried over"},
           MQDR_REF(MirrorConfig, x.nats.consumer_sync_interval)},
          {{.name = "batch", .type = Type::integer, .kinds = kNats, .min = 1, .max = 10000,
            .doc = "messages per pull request on the source"},
           MQDR_REF(MirrorConfig, x.nats.batch)},
          {{.name = "max_inflight", .type = Type::integer, .kinds = kNats, .min = 1,
            .max = 1000000, .doc = "asynchronous publishes awaiting their ack on the target"},
           MQDR_REF(MirrorConfig, x.nats.max_inflight)},
          {{.name = "exchanges", .type = Type::queue_name, .list = true, .kinds = kRabbit,
            .equiv = "items",
            .doc = "exchanges whose every routed message is copied (through a capture queue "
                   "bound to each); at least one of `exchanges` and `queues`"},
           MQDR_REF(MirrorConfig, x.rabbitmq.exchanges)},
          {{.name = "queues", .type = Type::queue_name, .list = true, .kinds = kRabbit,
            .equiv = "items",
            .doc = "shovel: messages are moved out of these queues to the target"},
           MQDR_REF(MirrorConfig, x.rabbitmq.queues)},
          {{.name = "shovel_exchange", .type = Type::string, .kinds = kRabbit,
            .doc = "exchange the shovelled messages are published to on the target; empty = "
                   "the default exchange, to the queue of the same name"},
           MQDR_REF(MirrorConfig, x.rabbitmq.shovel_exchange)},
          {{.name = "sync_definitions", .type = Type::boolean, .kinds = kRabbit,
            .equiv = "sync",
            .doc = "copy exchanges, queues, bindings and policies to the target (management "
                   "API)"},
           MQDR_REF(MirrorConfig, x.rabbitmq.sync_definitions)},
          {{.name = "prefetch", .type = Type::integer, .kinds = kRabbit, .min = 1,
            .max = 65535, .doc = "unacknowledged messages per consumer on the source"},
           MQDR_REF(MirrorConfig, x.rabbitmq.prefetch)},
          {{.name = "capture_max_length_bytes", .type = Type::size, .kinds = kRabbit, .min = 1,
            .doc = "limit of each capture queue; beyond it the oldest messages are dropped"},
           MQDR_REF(MirrorConfig, x.rabbitmq.capture_max_length_bytes)},
          {{.name = "capture_alarm_ratio", .type = Type::number, .kinds = kRabbit, .min = 0,
            .min_exclusive = true, .max = 1,
            .doc = "raise an alarm (log and metric) when a capture queue is this full"},
           MQDR_REF(MirrorConfig, x.rabbitmq.capture_alarm_ratio)},
          {{.name = "standby_margin", .type = Type::integer, .kinds = kRabbit, .min = 0,
            .doc = "at promotion, messages kept on a standby queue beyond the primary's last "
                   "known depth (the rest were consumed on the primary)"},
           MQDR_REF(MirrorConfig, x.rabbitmq.standby_margin)},
          {{.name = "refresh_interval", .type = Type::duration, .min = 0, .min_exclusive = true,
            .max = kMaxDurationMs, .def = "30s",
            .doc = "how often new topics, partitions, streams or definitions are discovered"},
           Custom<MirrorConfig>(parse_refresh)},
      },
      .kind_of = mirror_kind_of,
      .finish = mirror_finish};
  return t;
}

const Table<FailoverGroupConfig>& failover_table() {
  static const Table<FailoverGroupConfig> t{
      .title = "failover[]",
      .noun = "failover group",
      .doc = "Clusters that fail over and back together. Each pair names a primary (in use) and "
             "a standby (kept in step by a mirror). A cluster is the primary of at most one "
             "group.",
      .keys = {
          {{.name = "name", .type = Type::name, .required = true,
            .doc = "unique among groups; `mqdr failover --group NAME`"},
           MQDR_REF(FailoverGroupConfig, x.name)},
          {{.name = "pairs", .type = Type::sections, .required = true,
            .child = "failover[].pairs[]", .doc = "the clusters that switch together"},
           Custom<FailoverGroupConfig>(
               +[](Parser& p, const Spec& s, const Node& n, FailoverGroupConfig& g) {
                 parse_list(p, s, n, pair_table(), g.pairs);
               })},
          {{.name = "mode", .type = Type::choice, .choices = {"automatic", "manual"},
            .doc = "`automatic`: fail over when health checks fail; `manual`: only on command"},
           MQDR_CHOICE(FailoverGroupConfig, FailoverMode, mode)},
          {{.name = "health", .type = Type::section, .child = "failover[].health",
            .doc = "how the primaries are probed"},
           Custom<FailoverGroupConfig>(
               +[](Parser& p, const Spec&, const Node& n, FailoverGroupConfig& g) {
                 parse_section(p, n, health_table(), g.health);
               })},
          {{.name = "max_lag", .type = Type::duration, .min = 0, .min_exclusive = true,
            .max = kMaxDurationMs,
            .doc = "an automatic failover is refused (state `blocked`) when replication lagged "
                   "more than this"},
           MQDR_REF(FailoverGroupConfig, x.max_lag)},
          {{.name = "hold_down", .type = Type::duration, .min = 0, .max = kMaxDurationMs,
            .doc = "no automatic switch back within this time after a switch"},
           MQDR_REF(FailoverGroupConfig, x.hold_down)},
          {{.name = "drain_timeout", .type = Type::duration, .min = 0, .min_exclusive = true,
            .max = kMaxDurationMs,
            .doc = "how long a failover waits for the mirrors to copy what they still can"},
           MQDR_REF(FailoverGroupConfig, x.drain_timeout)},
          {{.name = "auto_failback", .type = Type::boolean,
            .doc = "fail back by itself once the primaries are healthy again and `hold_down` "
                   "has passed"},
           MQDR_REF(FailoverGroupConfig, x.auto_failback)},
          {{.name = "witnesses", .type = Type::url, .list = true,
            .doc = "status URLs of other observers (other mqdr instances); before an automatic "
                   "failover a strict majority of them must also see the primary down"},
           MQDR_REF(FailoverGroupConfig, x.witnesses)},
          {{.name = "fence_hooks", .type = Type::executable, .list = true,
            .doc = "executables run before promotion, e.g. to block the old primary; a failing "
                   "hook stops the failover unless it is forced (`--force`)"},
           MQDR_REF(FailoverGroupConfig, x.fence_hooks)},
          {{.name = "clients", .type = Type::section, .child = "failover[].clients",
            .doc = "how applications learn which side is active"},
           Custom<FailoverGroupConfig>(
               +[](Parser& p, const Spec&, const Node& n, FailoverGroupConfig& g) {
                 parse_section(p, n, clients_table(), g.clients);
               })},
      }};
  return t;
}

const Table<FailoverPair>& pair_table() {
  static const Table<FailoverPair> t{
      .title = "failover[].pairs[]",
      .noun = "pair",
      .doc = "Two clusters of one kind. A mirror from the primary to the standby should exist "
             "(a warning says when none does).",
      .keys = {
          {{.name = "primary", .type = Type::cluster, .required = true,
            .doc = "the cluster in use; applications know it by this name"},
           MQDR_REF(FailoverPair, x.primary)},
          {{.name = "standby", .type = Type::cluster, .required = true,
            .doc = "the cluster that takes over"},
           MQDR_REF(FailoverPair, x.standby)},
      }};
  return t;
}

const Table<HealthConfig>& health_table() {
  static const Table<HealthConfig> t{
      .title = "failover[].health",
      .noun = "health section",
      .doc = "A primary is down after `failures` failed probes in a row, and healthy again "
             "after `recoveries` good ones.",
      .keys = {
          {{.name = "interval", .type = Type::duration, .min = 0, .min_exclusive = true,
            .max = kMaxDurationMs, .doc = "time between probes"},
           MQDR_REF(HealthConfig, x.interval)},
          {{.name = "timeout", .type = Type::duration, .min = 0, .min_exclusive = true,
            .max = kMaxDurationMs, .doc = "a probe that takes longer has failed"},
           MQDR_REF(HealthConfig, x.timeout)},
          {{.name = "failures", .type = Type::integer, .min = 1, .max = 1000,
            .doc = "failed probes in a row before the primary counts as down"},
           MQDR_REF(HealthConfig, x.failures)},
          {{.name = "recoveries", .type = Type::integer, .min = 1, .max = 1000,
            .doc = "good probes in a row before it counts as healthy again"},
           MQDR_REF(HealthConfig, x.recoveries)},
      }};
  return t;
}

const Table<ClientsConfig>& clients_table() {
  static const Table<ClientsConfig> t{
      .title = "failover[].clients",
      .noun = "clients section",
      .doc = "On every switch, the clients file is rewritten atomically (no secrets in it) and "
             "the hooks run with `MQDR_GROUP`, `MQDR_EPOCH`, `MQDR_STATE`, `MQDR_ACTIVE` "
             "(`primary` or `standby`) and `MQDR_CLIENTS_FILE` in their environment.",
      .keys = {
          {{.name = "file", .type = Type::path, .required = true,
            .doc = "where the active addresses are written"},
           MQDR_REF(ClientsConfig, x.file)},
          {{.name = "format", .type = Type::choice, .choices = {"json", "env", "yaml"},
            .doc = "`json`, `env` (`MQDR_KAFKA_EAST_BOOTSTRAP_SERVERS=...` lines) or `yaml`"},
           MQDR_CHOICE(ClientsConfig, ClientsFormat, format)},
          {{.name = "hooks", .type = Type::executable, .list = true,
            .doc = "executables run after the file was written"},
           MQDR_REF(ClientsConfig, x.hooks)},
          {{.name = "hook_timeout", .type = Type::duration, .min = 0, .min_exclusive = true,
            .max = kMaxDurationMs,
            .doc = "a hook (clients or fence hook) still running after this is killed"},
           MQDR_REF(ClientsConfig, x.hook_timeout)},
      }};
  return t;
}

const Table<BackupPlanConfig>& backup_table() {
  static const Table<BackupPlanConfig> t{
      .title = "backups[]",
      .noun = "backup plan",
      .doc = "Scheduled backups of one cluster into `DIR/PLAN/`: a full backup every "
             "`full_every`, incremental ones in between; the kind of the cluster decides which "
             "keys apply.",
      .keys = {
          {{.name = "name", .type = Type::name, .required = true,
            .doc = "unique among plans; the directory under `dir`; `mqdr backup --plan NAME`"},
           MQDR_REF(BackupPlanConfig, x.name)},
          {{.name = "cluster", .type = Type::cluster, .required = true,
            .doc = "the cluster to back up"},
           MQDR_REF(BackupPlanConfig, x.cluster)},
          {{.name = "topics", .type = Type::regex, .list = true, .required = true,
            .kinds = kKafka, .equiv = "items", .doc = "patterns of the topics to back up"},
           MQDR_REF(BackupPlanConfig, x.topics)},
          {{.name = "groups", .type = Type::regex, .list = true, .kinds = kKafka,
            .doc = "patterns of consumer groups whose offsets are kept with the backup"},
           MQDR_REF(BackupPlanConfig, x.groups)},
          {{.name = "streams", .type = Type::regex, .list = true, .required = true,
            .kinds = kNats, .equiv = "items",
            .doc = "names or patterns of the streams to back up"},
           MQDR_REF(BackupPlanConfig, x.streams)},
          {{.name = "exchanges", .type = Type::queue_name, .list = true, .kinds = kRabbit,
            .equiv = "items",
            .doc = "exchanges whose definitions (with their bindings) are backed up"},
           MQDR_REF(BackupPlanConfig, x.exchanges)},
          {{.name = "queues", .type = Type::queue_name, .list = true, .kinds = kRabbit,
            .equiv = "items", .doc = "queues whose definitions and messages are backed up"},
           MQDR_REF(BackupPlanConfig, x.queues)},
          {{.name = "dir", .type = Type::path, .required = true,
            .doc = "directory that holds the plan's directory"},
           MQDR_REF(BackupPlanConfig, x.dir)},
          {{.name = "full_every", .type = Type::duration, .min = 0, .min_exclusive = true,
            .max = kMaxDurationMs, .doc = "time between full backups"},
           MQDR_REF(BackupPlanConfig, x.full_every)},
          {{.name = "incremental_every", .type = Type::duration, .min = 0,
            .min_exclusive = true, .max = kMaxDurationMs,
            .doc = "time between incremental backups (what changed since the previous one)"},
           MQDR_REF(BackupPlanConfig, x.incremental_every)},
          {{.name = "retention", .type = Type::duration, .min = 0, .min_exclusive = true,
            .max = kMaxDurationMs,
            .doc = "backups older than this are deleted, never one that a kept incremental "
                   "backup depends on"},
           MQDR_REF(BackupPlanConfig, x.retention)},
          {{.name = "compression", .type = Type::choice, .choices = {"zstd", "none"},
            .doc = "compression of the segment files"},
           MQDR_CHOICE(BackupPlanConfig, Compression, compression)},
      },
      .kind_of = backup_kind_of,
      .finish = backup_finish};
  return t;
}

#pragma GCC diagnostic pop

void parse_root(Parser& p, const Node& root) { parse_section(p, root, root_table(), p.cfg); }

std::string_view type_name(Type type) {
  switch (type) {
    case Type::string: return "string";
    case Type::name: return "name";
    case Type::cluster: return "cluster name";
    case Type::integer: return "integer";
    case Type::number: return "number";
    case Type::boolean: return "boolean";
    case Type::duration: return "duration";
    case Type::size: return "size";
    case Type::choice: return "choice";
    case Type::path: return "path";
    case Type::file: return "file";
    case Type::private_file: return "private file";
    case Type::executable: return "executable";
    case Type::secret: return "secret";
    case Type::secret_file: return "secret file";
    case Type::regex: return "pattern";
    case Type::queue_name: return "RabbitMQ name";
    case Type::topic_name: return "topic name";
    case Type::rename: return "template";
    case Type::url: return "URL";
    case Type::host_port: return "host:port";
    case Type::kafka_servers: return "host:port list";
    case Type::nats_servers: return "URL";
    case Type::amqp_uri: return "AMQP URI";
    case Type::map: return "mapping";
    case Type::section: return "section";
    case Type::sections: return "list of sections";
    case Type::named_sections: return "sections by name";
  }
  return "value";
}

}  // namespace mqdr::config::detail
