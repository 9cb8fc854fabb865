// docs/configuration.md, generated from the key tables: the docs cannot describe a key, a
// default or a bound that the parser does not have. Defaults come from the structs themselves
// (a default-constructed struct read through the table's accessor).

#include <fmt/format.h>

#include "config/reader.hpp"
#include "config/schema.hpp"
#include "mqdr/config_loader.hpp"

namespace mqdr::config {

namespace detail {
namespace {

std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string anchor(std::string_view title) {
  std::string out;
  for (char c : title) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_') {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (c == ' ') {
      out += '-';
    }
  }
  return out;
}

std::string code(std::string_view text) { return fmt::format("`{}`", text); }

std::string type_text(const Spec& spec) {
  if (spec.type == Type::choice) return "choice";
  std::string name(type_name(spec.type));
  if (!spec.list || spec.type == Type::sections) return name;
  return "list of " + name + (name.ends_with("s") ? "" : "s");
}

std::string bound(const Spec& spec, double value) {
  switch (spec.type) {
    case Type::duration:
      return format_duration(Duration{static_cast<std::int64_t>(value)});
    case Type::size:
      return format_size(static_cast<std::int64_t>(value));
    default:
      return fmt::format("{}", value);
  }
}

std::string allowed_text(const Spec& spec) {
  if (spec.type == Type::choice) {
    std::string out;
    for (auto c : spec.choices) out += (out.empty() ? "" : ", ") + code(c);
    return out;
  }
  if (spec.min && spec.max) {
    return fmt::format("{} {} … ≤ {}", spec.min_exclusive ? ">" : "≥", bound(spec, *spec.min),
                       bound(spec, *spec.max));
  }
  if (spec.min) return fmt::format("{} {}", spec.min_exclusive ? ">" : "≥", bound(spec, *spec.min));
  if (spec.max) return fmt::format("≤ {}", bound(spec, *spec.max));
  return "";
}

template <class X>
std::string default_text(const Key<X>& key) {
  const Spec& spec = key.spec;
  if (spec.required) return spec.list ? "required, not empty" : "required";
  if (!spec.def.empty()) return spec.def.find(' ') == std::string_view::npos ? code(spec.def)
                                                                              : std::string(spec.def);
  X x{};
  return std::visit(
      [&](auto&& get) -> std::string {
        using S = std::decay_t<decltype(get)>;
        if constexpr (std::is_same_v<S, std::string& (*)(X&)>) {
          return get(x).empty() ? "" : code(get(x));
        } else if constexpr (std::is_same_v<S, std::filesystem::path& (*)(X&)>) {
          return get(x).empty() ? "" : code(get(x).string());
        } else if constexpr (std::is_same_v<S, int& (*)(X&)>) {
          return code(std::to_string(get(x)));
        } else if constexpr (std::is_same_v<S, std::int64_t& (*)(X&)>) {
          return code(spec.type == Type::size ? format_size(get(x)) : std::to_string(get(x)));
        } else if constexpr (std::is_same_v<S, double& (*)(X&)>) {
          return code(fmt::format("{}", get(x)));
        } else if constexpr (std::is_same_v<S, bool& (*)(X&)>) {
          return code(get(x) ? "true" : "false");
        } else if constexpr (std::is_same_v<S, Duration& (*)(X&)>) {
          return code(format_duration(get(x)));
        } else if constexpr (std::is_same_v<S, std::vector<std::string>& (*)(X&)>) {
          return get(x).empty() ? code("[]") : code(fmt::format("[{}]", fmt::join(get(x), ", ")));
        } else if constexpr (std::is_same_v<S, std::map<std::string, std::string>& (*)(X&)>) {
          return code("{}");
        } else if constexpr (std::is_same_v<S, Choice<X>>) {
          return code(spec.choices[static_cast<std::size_t>(get.get(x))]);
        } else {
          return "";
        }
      },
      key.set);
}

template <class X>
void section(std::string& out, const Table<X>& t) {
  bool kinds = t.kind_of != nullptr;
  out += fmt::format("## {}\n\n{}\n\n", t.title, t.doc);
  out += kinds ? "| key | kinds | type | default | allowed | description |\n"
                 "| --- | --- | --- | --- | --- | --- |\n"
               : "| key | type | default | allowed | description |\n"
                 "| --- | --- | --- | --- | --- |\n";
  for (const auto& key : t.keys) {
    const Spec& spec = key.spec;
    std::string doc(spec.doc);
    if (!spec.child.empty()) {
      doc += fmt::format("; see [{}](#{})", spec.child, anchor(spec.child));
    }
    std::string kind_text;
    if (kinds) {
      kind_text = spec.kinds == kAllKinds ? "all" : "";
      for (auto k : {ClusterKind::kafka, ClusterKind::nats, ClusterKind::rabbitmq}) {
        if (spec.kinds != kAllKinds && (spec.kinds & bit(k)) != 0) {
          kind_text += (kind_text.empty() ? "" : ", ") + std::string(to_string(k));
        }
      }
      kind_text += " | ";
    }
    std::string def = default_text(key);
    out += fmt::format("| `{}` | {}{} | {} | {} | {} |\n", spec.name, kind_text,
                       escape(type_text(spec)), escape(def.empty() ? "–" : def),
                       escape(allowed_text(spec)), escape(doc));
  }
  out += "\n";
}

constexpr std::string_view kIntro = R"(# mqdr configuration reference

<!-- Generated by mqdr::config::reference_markdown() from the key tables in
     src/config/schema.cpp; do not edit. Regenerate: mqdr_config_docgen > docs/configuration.md -->

mqdr reads one YAML file (`mqdr run -c FILE`). `mqdr validate -c FILE` checks it without
touching any broker and prints every problem at once, in file order, each as

```
FILE:LINE:COLUMN: key.path: what is wrong
```

for example `mqdr.yaml:31:13: mirrors[0].source: unknown cluster 'kafka-est'; did you mean
'kafka-east'?`. It exits 0 when the config is valid and 2 otherwise. Warnings (`warning:` after
the key path) point at likely mistakes and do not make a config invalid. What the config needs
from the host it runs on (the files it names, `${NAME}` variables, hooks) is reported as
warnings, since a config is often checked elsewhere (CI, a laptop); `mqdr validate --strict`
makes them errors, as `mqdr run` does. `SIGHUP` reloads the
file with the same checks; a reload with errors keeps the running config, and only the mirrors
and backup plans whose settings (or whose clusters' settings, secrets included) changed are
restarted. [`config/mqdr.example.yaml`](../config/mqdr.example.yaml) is a complete example.

## Rules for every key

- **Unknown keys are errors**, with a "did you mean" for a misspelt key and the list of allowed
  keys otherwise. Keys of another broker kind are refused with the key to use instead (`topics`
  on a NATS mirror: use `streams`). Duplicate keys are errors. YAML anchors and aliases work;
  merge keys (`<<`) do not.
- **The file** is one YAML document of UTF-8 text, at most 16 MiB. An empty file, a directory,
  a binary file and a YAML syntax error are reported as such, with the line where it applies.
- **Environment variables**: `${NAME}` in any value is replaced by the variable's value; an unset
  variable is an error naming the variable and the key. `${NAME:-default}` uses `default` when
  the variable is unset or empty. `$${` writes a literal `${`. Values taken from the environment
  are never repeated in messages.
- **Secrets** (type *secret*) are never shown in any message or log line, not even when they are
  of the wrong type. Each can be written in place (usually as `${NAME}`) or read from a file
  with the same key plus `_file` (`password` / `password_file`); giving both is an error.
- **Paths** may be relative: they are resolved against the directory of the config file.
  Files that mqdr reads at start (certificates, keys, credentials, secret files, hooks) must
  exist when the config is loaded.
- **Names** of clusters, mirrors, failover groups and backup plans start with a letter or digit
  and contain letters, digits, `-` and `_` (at most 64). Mirror, group and plan names are unique
  within their list.

## Types

| type | written as |
| --- | --- |
| string | any text |
| name | see the rule for names above |
| cluster name | the name of a cluster under `clusters` |
| integer, number | `42`, `0.8`; within the bounds in the "allowed" column |
| boolean | `true` or `false` |
| duration | a number with a unit: `500ms`, `2s`, `5m`, `1h`, `30d`; combined from the largest unit down: `1m30s`, `1h30m`; `0` alone is zero |
| size | bytes: `1048576`, `512KiB`, `64MiB`, `1GiB`, `1TiB` (also `KB`, `MB`, `GB`, `TB`, powers of 1000) |
| choice | one of the values in the "allowed" column |
| path | a file system path (see the rule for paths) |
| file | a path to a readable regular file |
| private file | a file that must not be readable by every user (a warning says when it is: `chmod o-rwx`) |
| executable | a path to an executable file |
| secret | a value never shown (see the rule for secrets) |
| secret file | a private file whose content, without trailing newlines, is the secret |
| pattern | an ECMAScript regular expression matched against **whole** names: `orders` matches only `orders`, `orders\..*` matches `orders.eu` |
| RabbitMQ name | an exchange or queue name, 1 to 255 bytes |
| topic name | a Kafka topic name: letters, digits, `.`, `_`, `-`, at most 249 |
| template | text with placeholders in braces |
| URL | `scheme://host[:port][/path]`; no user or password in it |
| host:port | `host:port`, `[IPv6]:port` |
| mapping | `name: value` pairs of scalars |
| section | a nested mapping with its own keys, documented below |

)";

constexpr std::string_view kChecks = R"(## Checks across sections

- `mirrors[].source` and `target` name existing clusters of one kind, and two different ones.
- `failover[].pairs[]`: `primary` and `standby` exist, are of one kind and differ; a cluster
  appears once per group and is the primary of at most one group. A warning says when no mirror
  copies a primary to its standby.
- `backups[].cluster` names an existing cluster; its kind decides which of `topics`, `groups`,
  `streams`, `exchanges`, `queues` apply.
- A RabbitMQ mirror or backup plan names `exchanges` or `queues` (or both).
- Warnings: two mirrors copying in opposite directions under unchanged names (records would
  loop), a secret file readable by every user, `tls.verify: false`, an admin API reachable from
  other hosts without TLS, `incremental_every` not shorter than `full_every`, a native NATS
  mirror copying a failover pair (a failback brings copies back as duplicates), and a config
  with nothing to do.
)";

}  // namespace
}  // namespace detail

std::string reference_markdown() {
  using namespace detail;
  std::string out(kIntro);
  section(out, root_table());
  section(out, daemon_table());
  section(out, admin_table());
  section(out, log_table());
  section(out, cluster_table());
  section(out, tls_table());
  section(out, mirror_table());
  section(out, failover_table());
  section(out, pair_table());
  section(out, health_table());
  section(out, clients_table());
  section(out, backup_table());
  out += kChecks;
  return out;
}

}  // namespace mqdr::config
