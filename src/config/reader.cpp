#include "config/reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
// libstdc++ 12's <regex> trips a false -Wmaybe-uninitialized in its NFA code when built with
// -fsanitize (MQDR_SANITIZE); silence it for that header only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop
#include <set>

#include <fmt/format.h>

#include "config/uri.hpp"

namespace mqdr::config {

namespace {

struct Unit {
  std::string_view suffix;
  std::int64_t ms;
};
// Largest first: a combined duration must use them in this order, each once.
constexpr Unit kUnits[] = {{"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000},
                           {"s", 1'000},      {"ms", 1}};

}  // namespace

std::optional<Duration> parse_duration(const std::string& text) {
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  bool negative = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return Duration{0};
  if (s.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t next_unit = 0;  // index into kUnits of the smallest unit still allowed
  while (!s.empty()) {
    std::size_t digits = 0;
    while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits])) != 0) ++digits;
    if (digits == 0 || digits > 15) return std::nullopt;
    std::int64_t value = 0;
    std::from_chars(s.data(), s.data() + digits, value);
    s.remove_prefix(digits);
    // "ms" before "m" so that "5ms" is not 5 minutes and a stray "s".
    std::optional<std::size_t> unit;
    if (s.substr(0, 2) == "ms") {
      unit = 4;
    } else if (!s.empty()) {
      for (std::size_t i = 0; i < 4; ++i) {
        if (s.substr(0, 1) == kUnits[i].suffix) unit = i;
      }
    }
    if (!unit || *unit < next_unit) return std::nullopt;
    s.remove_prefix(kUnits[*unit].suffix.size());
    next_unit = *unit + 1;
    if (value > (std::numeric_limits<std::int64_t>::max() - total) / kUnits[*unit].ms) {
      return std::nullopt;
    }
    total += value * kUnits[*unit].ms;
  }
  return Duration{negative ? -total : total};
}

std::string format_duration(Duration d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out += '-';
    ms = -ms;
  }
  for (const auto& unit : kUnits) {
    if (ms >= unit.ms) {
      out += std::to_string(ms / unit.ms);
      out += unit.suffix;
      ms %= unit.ms;
    }
  }
  return out;
}

namespace detail {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string join_path(const std::string& base, const std::string& key) {
  return base.empty() ? key : base + "." + key;
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front())) != 0) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

std::string format_bound(const Spec& spec, double value) {
  switch (spec.type) {
    case Type::duration:
      return format_duration(Duration{static_cast<std::int64_t>(value)});
    case Type::size:
      return format_size(static_cast<std::int64_t>(value));
    default:
      return fmt::format("{}", value);
  }
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

bool topic_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
}

std::string check_topic_name(std::string_view name) {
  if (name.size() > 249) return "a Kafka topic name has at most 249 characters";
  if (name == "." || name == "..") return "'.' and '..' are not valid Kafka topic names";
  if (!std::all_of(name.begin(), name.end(), topic_char)) {
    return "a Kafka topic name may contain only letters, digits, '.', '_' and '-'";
  }
  return {};
}

std::string check_rename(std::string_view t) {
  bool has_topic = false;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '{') {
      auto close = t.find('}', i);
      if (close == std::string_view::npos) return "has a '{' without a closing '}'";
      auto name = t.substr(i + 1, close - i - 1);
      if (name == "topic") {
        has_topic = true;
      } else if (name != "source" && name != "target") {
        return fmt::format(
            "has an unknown placeholder '{{{}}}'; use {{topic}}, {{source}} or {{target}}", name);
      }
      i = close;
    } else if (t[i] == '}') {
      return "has a '}' without an opening '{'";
    } else if (!topic_char(t[i])) {
      return fmt::format(
          "has '{}', which cannot be part of a Kafka topic name (use letters, digits, '.', '_', "
          "'-')",
          t[i]);
    }
  }
  if (!has_topic) {
    return "must contain {topic}, e.g. '{topic}' or '{source}.{topic}' (each source topic needs "
           "its own target topic)";
  }
  return {};
}

}  // namespace

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::string x = lower(a);
  std::string y = lower(b);
  const std::size_t n = x.size();
  const std::size_t m = y.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      std::size_t cost = x[i - 1] == y[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string closest(std::string_view word, const std::vector<std::string>& candidates) {
  if (word.size() > 200) return {};
  // Short words need a close match, or every short key would suggest every other one.
  const std::size_t limit = word.size() <= 5 ? 1 : word.size() <= 10 ? 2 : 3;
  std::string best;
  std::size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(word, c);
    // "warning" for "warn", "rabbit" for "rabbitmq": one is the start of the other.
    const auto& shorter = word.size() < c.size() ? std::string(word) : c;
    const auto& longer = word.size() < c.size() ? c : std::string(word);
    if (shorter.size() >= 3 && edit_distance(shorter, longer.substr(0, shorter.size())) == 0) {
      d = std::min(d, limit);
    }
    if (d < best_distance && d < std::max(word.size(), c.size())) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

std::string check_regex(const std::string& pattern) {
  if (pattern.empty()) return "an empty pattern matches no name";
  if (pattern.size() > 1000) return "a pattern may have at most 1000 characters";
  // std::regex compiles recursively; bound the nesting so that no pattern can exhaust the stack.
  int depth = 0;
  int max_depth = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      ++i;
    } else if (pattern[i] == '(') {
      max_depth = std::max(max_depth, ++depth);
    } else if (pattern[i] == ')') {
      --depth;
    }
  }
  if (max_depth > 50) return "groups are nested more than 50 deep";
  // libstdc++ calls a leading quantifier "mismatched parentheses"; it is usually a glob.
  if (pattern.front() == '*' || pattern.front() == '+' || pattern.front() == '?') {
    return fmt::format("'{}' at the start has nothing to repeat (patterns are regular "
                       "expressions, not globs: '.*' matches any text)",
                       pattern.front());
  }
  try {
    std::regex re(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    switch (e.code()) {
      case std::regex_constants::error_paren:
        return "unbalanced parentheses";
      case std::regex_constants::error_brack:
        return "unbalanced brackets '[ ]'";
      case std::regex_constants::error_brace:
        return "unbalanced braces '{ }'";
      case std::regex_constants::error_badbrace:
        return "invalid repetition count in '{ }'";
      case std::regex_constants::error_range:
        return "invalid character range";
      case std::regex_constants::error_escape:
        return "invalid escape sequence";
      case std::regex_constants::error_badrepeat:
        return "'*', '+', '?' or '{' with nothing to repeat";
      case std::regex_constants::error_ctype:
      case std::regex_constants::error_collate:
        return "invalid character class";
      case std::regex_constants::error_backref:
        return "invalid back reference";
      case std::regex_constants::error_complexity:
      case std::regex_constants::error_space:
        return "the pattern is too complex";
      default:
        return "the pattern cannot be compiled";
    }
  } catch (const std::exception&) {
    return "the pattern cannot be compiled";
  }
  return {};
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (std::isalnum(static_cast<unsigned char>(name.front())) == 0) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
  });
}

std::string format_size(std::int64_t bytes) {
  constexpr std::pair<std::int64_t, const char*> kSizes[] = {
      {1LL << 40, "TiB"}, {1LL << 30, "GiB"}, {1LL << 20, "MiB"}, {1LL << 10, "KiB"}};
  for (const auto& [factor, suffix] : kSizes) {
    if (bytes != 0 && bytes % factor == 0) return fmt::format("{}{}", bytes / factor, suffix);
  }
  return std::to_string(bytes);
}

// ---------------------------------------------------------------------------------------------
// Parser

Parser::Parser(std::string file, const LoadOptions& options, std::filesystem::path base_dir)
    : file_(std::move(file)), options_(options), base_dir_(std::move(base_dir)) {
  if (!options_.env) {
    options_.env = [](const std::string& name) -> std::optional<std::string> {
      const char* value = std::getenv(name.c_str());
      if (value == nullptr) return std::nullopt;
      return std::string(value);
    };
  }
}

void Parser::add(Problem problem) {
  if (problems_.size() >= kMaxProblems) {
    ++dropped_;
    return;
  }
  problem.file = file_;
  problems_.push_back(std::move(problem));
}

void Parser::error(const YAML::Mark& mark, const std::string& path, std::string message) {
  Problem p;
  p.line = mark.line >= 0 ? mark.line + 1 : 0;
  p.column = mark.line >= 0 && mark.column >= 0 ? mark.column + 1 : 0;
  p.path = path;
  p.message = std::move(message);
  add(std::move(p));
}

void Parser::warning(const YAML::Mark& mark, const std::string& path, std::string message) {
  Problem p;
  p.line = mark.line >= 0 ? mark.line + 1 : 0;
  p.column = mark.line >= 0 && mark.column >= 0 ? mark.column + 1 : 0;
  p.path = path;
  p.message = std::move(message);
  p.warning = true;
  add(std::move(p));
}

void Parser::file_error(std::string message) {
  Problem p;
  p.message = std::move(message);
  add(std::move(p));
}

bool Parser::has_errors() const {
  return dropped_ > 0 ||
         std::any_of(problems_.begin(), problems_.end(), [](const auto& p) { return !p.warning; });
}

std::vector<Problem> Parser::take_problems() {
  std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  std::vector<Problem> out;
  std::set<std::string> seen;
  for (auto& p : problems_) {
    if (seen.insert(p.str()).second) out.push_back(std::move(p));
  }
  if (dropped_ > 0) {
    Problem p;
    p.file = file_;
    p.message = fmt::format("{} more problems not shown; fix the ones above first", dropped_);
    out.push_back(std::move(p));
  }
  problems_.clear();
  dropped_ = 0;
  return out;
}

void Parser::record(const std::string& path, const YAML::Mark& mark) { marks_[path] = mark; }

YAML::Mark Parser::mark_of(const std::string& path) const {
  auto it = marks_.find(path);
  return it == marks_.end() ? YAML::Mark::null_mark() : it->second;
}

int Parser::line_of(const std::string& path) const {
  auto mark = mark_of(path);
  return mark.line >= 0 ? mark.line + 1 : 0;
}

std::string Parser::quote(const std::string& path, const std::string& value) const {
  if (env_paths_.count(path) != 0) return "";
  return fmt::format(" '{}'", value);
}

std::string Parser::describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "a single value";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "empty";
  }
}

Entries Parser::entries(const Node& map) {
  Entries out;
  record(map.path, map.mark);
  if (!map.yaml.IsMap()) return out;
  std::map<std::string, int> first_line;
  for (auto it = map.yaml.begin(); it != map.yaml.end(); ++it) {
    // Copies: yaml-cpp's iterator hands out a temporary proxy, references into it dangle.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    YAML::Mark key_mark = key.Mark().line >= 0 ? key.Mark() : map.mark;
    if (!key.IsScalar()) {
      error(key_mark, map.path,
            fmt::format("a key must be a plain name, not {}", key.IsNull() ? "empty" : describe(key)));
      continue;
    }
    const std::string& name = key.Scalar();
    std::string path = join_path(map.path, name);
    if (auto f = first_line.find(name); f != first_line.end()) {
      error(key_mark, path, fmt::format("duplicate key (first at line {})", f->second));
      continue;
    }
    first_line[name] = key_mark.line + 1;
    // yaml-cpp places an empty value at the next token, often the next line: report at the key.
    bool good_mark = !value.IsNull() && value.Mark().line >= 0;
    out.push_back(Entry{name, key_mark, Node{value, path, good_mark ? value.Mark() : key_mark}});
    record(path, out.back().value.mark);
  }
  return out;
}

std::vector<Node> Parser::items(const Node& seq) {
  std::vector<Node> out;
  if (!seq.yaml.IsSequence()) return out;
  std::size_t i = 0;
  for (const auto& item : seq.yaml) {
    bool good_mark = !item.IsNull() && item.Mark().line >= 0;
    out.push_back(Node{item, fmt::format("{}[{}]", seq.path, i++), good_mark ? item.Mark() : seq.mark});
    record(out.back().path, out.back().mark);
  }
  return out;
}

std::optional<Scalar> Parser::substitute(const Node& n, const std::string& in, bool report) {
  Scalar out;
  bool ok = true;
  for (std::size_t i = 0; i < in.size();) {
    if (in.compare(i, 3, "$${") == 0) {
      out.text += "${";
      i += 3;
      continue;
    }
    if (in.compare(i, 2, "${") != 0) {
      out.text += in[i++];
      continue;
    }
    out.from_env = true;
    auto close = in.find('}', i + 2);
    if (close == std::string::npos) {
      if (report) error(n.mark, n.path, "'${' without a closing '}' (write '$${' for a literal '${')");
      return std::nullopt;
    }
    std::string inner = in.substr(i + 2, close - i - 2);
    std::string name = inner;
    std::optional<std::string> fallback;
    if (auto dash = inner.find(":-"); dash != std::string::npos) {
      name = inner.substr(0, dash);
      fallback = inner.substr(dash + 2);
    }
    i = close + 1;
    if (!valid_env_name(name)) {
      if (report) {
        error(n.mark, n.path,
              "'${...}' must contain an environment variable name (letters, digits and '_', not "
              "starting with a digit), optionally followed by ':-default'");
      }
      ok = false;
      continue;
    }
    auto value = options_.env(name);
    if (value && !(fallback && value->empty())) {
      out.text += *value;
    } else if (fallback) {
      out.text += *fallback;
    } else if (!options_.host_checks) {
      out.text += name;
    } else {
      if (report) {
        error(n.mark, n.path, fmt::format("environment variable '{}' is not set", name));
      }
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<Scalar> Parser::scalar(const Node& n, std::string_view expected, bool secret) {
  record(n.path, n.mark);
  if (!n.yaml.IsDefined() || n.yaml.IsNull()) {
    error(n.mark, n.path, fmt::format("has no value; expected {}", expected));
    return std::nullopt;
  }
  if (!n.yaml.IsScalar()) {
    error(n.mark, n.path, fmt::format("must be {}, not {}", expected, describe(n.yaml)));
    return std::nullopt;
  }
  (void)secret;  // secrets are read like any other scalar; callers never show them
  auto out = substitute(n, n.yaml.Scalar(), true);
  if (out && out->from_env) env_paths_.insert(n.path);
  return out;
}

std::optional<std::string> Parser::peek(const Node& n) {
  if (!n.yaml.IsDefined() || !n.yaml.IsScalar()) return std::nullopt;
  auto s = substitute(n, n.yaml.Scalar(), false);
  if (!s) return std::nullopt;
  return s->text;
}

std::string Parser::got(const Scalar& s, bool secret) {
  if (secret || s.from_env || s.text.size() > 120) return {};
  for (char c : s.text) {
    if (static_cast<unsigned char>(c) < 0x20) return {};
  }
  return fmt::format(", got '{}'", s.text);
}

bool Parser::bounds_ok(const Spec& spec, double value, const Node& n, const Scalar& s) {
  bool below = spec.min && (spec.min_exclusive ? value <= *spec.min : value < *spec.min);
  bool above = spec.max && value > *spec.max;
  if (!below && !above) return true;
  std::string message;
  if (spec.min && spec.max && !spec.min_exclusive) {
    message = fmt::format("must be from {} to {}", format_bound(spec, *spec.min),
                          format_bound(spec, *spec.max));
  } else if (above) {
    message = fmt::format("must be at most {}", format_bound(spec, *spec.max));
  } else if (spec.min_exclusive && *spec.min == 0) {
    message = spec.type == Type::duration ? "must be longer than 0s" : "must be greater than 0";
  } else {
    message = fmt::format("must be {} {}", spec.min_exclusive ? "greater than" : "at least",
                          format_bound(spec, *spec.min));
  }
  error(n.mark, n.path, message + got(s, spec.type == Type::secret));
  return false;
}

std::optional<std::string> Parser::text(const Spec& spec, const Node& n) {
  auto s = scalar(n, "a string", false);
  if (!s) return std::nullopt;
  const std::string& t = s->text;
  auto fail = [&](std::string message) -> std::optional<std::string> {
    error(n.mark, n.path, std::move(message));
    return std::nullopt;
  };
  switch (spec.type) {
    case Type::name:
      if (!valid_name(t)) {
        return fail("a name must start with a letter or digit and contain only letters, digits, "
                    "'-' and '_' (at most 64)" + got(*s, false));
      }
      return t;
    case Type::cluster:
      if (t.empty()) return fail("is empty; expected the name of a cluster under 'clusters'");
      return t;
    case Type::path:
    case Type::file:
    case Type::private_file:
    case Type::executable: {
      if (t.empty()) return fail("is empty; expected a path");
      auto path = resolve(t);
      if (!options_.host_checks) return path.string();
      if (spec.type == Type::file || spec.type == Type::private_file) {
        if (!check_file(n, path, spec.type == Type::private_file)) return std::nullopt;
      } else if (spec.type == Type::executable) {
        if (!check_executable(n, path)) return std::nullopt;
      }
      return path.string();
    }
    case Type::regex: {
      auto why = check_regex(t);
      if (!why.empty()) return fail("not a valid regular expression: " + why + got(*s, false));
      return t;
    }
    case Type::queue_name:
      if (t.empty() || t.size() > 255) {
        return fail("a RabbitMQ name has 1 to 255 bytes" + got(*s, false));
      }
      return t;
    case Type::topic_name:
      if (!t.empty()) {
        auto why = check_topic_name(t);
        if (!why.empty()) return fail(why + got(*s, false));
      }
      return t;
    case Type::rename: {
      auto why = check_rename(t);
      if (!why.empty()) return fail(why + got(*s, false));
      return t;
    }
    case Type::url: {
      std::string why;
      auto url = parse_url(t, &why);
      if (!url) return fail("not a valid URL: " + why);
      if (url->scheme != "http" && url->scheme != "https") {
        return fail("must be an http:// or https:// URL");
      }
      if (url->has_userinfo) {
        return fail("must not contain a user or password (they would end up in logs)");
      }
      return t;
    }
    case Type::host_port: {
      std::string why;
      if (!parse_host_port(t, true, &why)) return fail(why + got(*s, false));
      return t;
    }
    default:
      return t;
  }
}

std::optional<std::int64_t> Parser::integer(const Spec& spec, const Node& n) {
  auto s = scalar(n, "an integer", false);
  if (!s) return std::nullopt;
  auto value = parse_int(s->text);
  if (!value) {
    error(n.mark, n.path, "must be an integer" + got(*s, false));
    return std::nullopt;
  }
  if (!bounds_ok(spec, static_cast<double>(*value), n, *s)) return std::nullopt;
  return value;
}

std::optional<std::int64_t> Parser::size(const Spec& spec, const Node& n) {
  auto s = scalar(n, "a size", false);
  if (!s) return std::nullopt;
  std::string_view t = s->text;
  std::size_t digits = 0;
  while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits])) != 0) ++digits;
  auto number = parse_int(t.substr(0, digits));
  auto suffix = t.substr(digits);
  while (!suffix.empty() && suffix.front() == ' ') suffix.remove_prefix(1);
  static const std::map<std::string_view, std::int64_t> kSuffixes = {
      {"", 1},          {"B", 1},          {"KiB", 1LL << 10}, {"MiB", 1LL << 20},
      {"GiB", 1LL << 30}, {"TiB", 1LL << 40}, {"KB", 1000},       {"MB", 1000'000},
      {"GB", 1000'000'000}, {"TB", 1000'000'000'000}};
  auto factor = kSuffixes.find(suffix);
  if (!number || digits > 15 || factor == kSuffixes.end()) {
    error(n.mark, n.path,
          "must be a size in bytes, e.g. 1048576, 512MiB or 1GiB (suffixes B, KiB, MiB, GiB, "
          "TiB, KB, MB, GB, TB)" + got(*s, false));
    return std::nullopt;
  }
  if (*number > std::numeric_limits<std::int64_t>::max() / factor->second) {
    error(n.mark, n.path, "is too large" + got(*s, false));
    return std::nullopt;
  }
  std::int64_t value = *number * factor->second;
  if (!bounds_ok(spec, static_cast<double>(value), n, *s)) return std::nullopt;
  return value;
}

std::optional<double> Parser::number(const Spec& spec, const Node& n) {
  auto s = scalar(n, "a number", false);
  if (!s) return std::nullopt;
  double value = 0;
  const char* begin = s->text.data();
  const char* end = begin + s->text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value)) {
    error(n.mark, n.path, "must be a number" + got(*s, false));
    return std::nullopt;
  }
  if (!bounds_ok(spec, value, n, *s)) return std::nullopt;
  return value;
}

std::optional<bool> Parser::boolean(const Spec& /*spec*/, const Node& n) {
  auto s = scalar(n, "true or false", false);
  if (!s) return std::nullopt;
  auto t = lower(s->text);
  if (t == "true") return true;
  if (t == "false") return false;
  error(n.mark, n.path, "must be true or false" + got(*s, false));
  return std::nullopt;
}

std::optional<Duration> Parser::duration(const Spec& spec, const Node& n) {
  auto s = scalar(n, "a duration", false);
  if (!s) return std::nullopt;
  auto d = parse_duration(s->text);
  if (!d) {
    bool bare_number = parse_int(s->text).has_value();
    error(n.mark, n.path,
          std::string(bare_number ? "needs a unit: ms, s, m, h or d (e.g. 30s)"
                                  : "must be a duration such as 500ms, 2s, 5m, 1h, 30d or 1m30s") +
              got(*s, false));
    return std::nullopt;
  }
  if (!bounds_ok(spec, static_cast<double>(d->count()), n, *s)) return std::nullopt;
  return d;
}

std::optional<int> Parser::choice(const Spec& spec, const Node& n) {
  std::vector<std::string> choices(spec.choices.begin(), spec.choices.end());
  auto s = scalar(n, "one of: " + quoted_list(choices), false);
  if (!s) return std::nullopt;
  for (std::size_t i = 0; i < spec.choices.size(); ++i) {
    if (s->text == spec.choices[i]) return static_cast<int>(i);
  }
  std::string message = "must be one of: " + quoted_list(choices) + got(*s, false);
  if (!s->from_env) {
    auto hint = closest(s->text, choices);
    if (!hint.empty()) message += fmt::format("; did you mean '{}'?", hint);
  }
  error(n.mark, n.path, message);
  return std::nullopt;
}

std::optional<Secret> Parser::secret(const Spec& /*spec*/, const Node& n) {
  auto s = scalar(n, "a string", true);
  if (!s) return std::nullopt;
  if (s->text.empty()) {
    error(n.mark, n.path, "is empty");
    return std::nullopt;
  }
  return Secret(s->text);
}

std::optional<Secret> Parser::secret_file(const Spec& /*spec*/, const Node& n,
                                          std::string* resolved) {
  auto s = scalar(n, "a path", false);
  if (!s) return std::nullopt;
  if (s->text.empty()) {
    error(n.mark, n.path, "is empty; expected a path");
    return std::nullopt;
  }
  auto path = resolve(s->text);
  if (resolved != nullptr) *resolved = path.string();
  if (!options_.host_checks) return Secret("(not read: host checks off)");
  auto content = read_secret_file(n, path);
  if (!content) return std::nullopt;
  return Secret(std::move(*content));
}

std::optional<std::vector<std::string>> Parser::list(const Spec& spec, const Node& n) {
  record(n.path, n.mark);
  if (!n.yaml.IsDefined() || n.yaml.IsNull()) {
    error(n.mark, n.path, "has no value; expected a list (write [] for an empty one)");
    return std::nullopt;
  }
  if (!n.yaml.IsSequence()) {
    std::string message = "must be a list, not " + describe(n.yaml);
    if (n.yaml.IsScalar()) message += " (write [item] for a list of one)";
    error(n.mark, n.path, message);
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (const auto& item : items(n)) {
    auto value = text(spec, item);
    if (value) {
      out.push_back(std::move(*value));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  if (spec.required && out.empty()) {
    error(n.mark, n.path, "must not be empty");
    return std::nullopt;
  }
  return out;
}

std::optional<std::map<std::string, std::string>> Parser::string_map(const Spec& /*spec*/,
                                                                     const Node& n) {
  record(n.path, n.mark);
  if (!n.yaml.IsDefined() || n.yaml.IsNull()) {
    error(n.mark, n.path, "has no value; expected a mapping (write {} for an empty one)");
    return std::nullopt;
  }
  if (!n.yaml.IsMap()) {
    error(n.mark, n.path, "must be a mapping of names to values, not " + describe(n.yaml));
    return std::nullopt;
  }
  std::map<std::string, std::string> out;
  bool ok = true;
  for (const auto& e : entries(n)) {
    auto value = scalar(e.value, "a string, number or boolean", true);
    if (value) {
      out[e.key] = value->text;
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::vector<std::pair<Node, std::string>>> Parser::list_or_csv(const Spec& spec,
                                                                            const Node& n) {
  std::vector<std::pair<Node, std::string>> out;
  if (n.yaml.IsSequence()) {
    bool ok = true;
    for (const auto& item : items(n)) {
      auto s = scalar(item, "a string", false);
      if (s) {
        out.emplace_back(item, s->text);
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
  } else {
    auto s = scalar(n, "a string or a list", false);
    if (!s) return std::nullopt;
    std::string_view rest = s->text;
    while (true) {
      auto comma = rest.find(',');
      auto item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      out.emplace_back(n, std::string(item));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (spec.required && out.empty()) {
    error(n.mark, n.path, "must not be empty");
    return std::nullopt;
  }
  return out;
}

std::filesystem::path Parser::resolve(const std::string& path) const {
  std::filesystem::path p(path);
  if (p.is_relative()) p = base_dir_ / p;
  return p.lexically_normal();
}

std::string Parser::file_name(const Node& n, const std::filesystem::path& path) const {
  if (env_paths_.count(n.path) != 0) return "the file named by ${...}";
  return fmt::format("'{}'", path.string());
}

bool Parser::check_file(const Node& n, const std::filesystem::path& path, bool private_data) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error(n.mark, n.path,
          fmt::format("cannot read {}: {}", file_name(n, path), std::strerror(errno)));
    return false;
  }
  if (S_ISDIR(st.st_mode)) {
    error(n.mark, n.path, fmt::format("{} is a directory, not a file", file_name(n, path)));
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    error(n.mark, n.path, fmt::format("{} is not a regular file", file_name(n, path)));
    return false;
  }
  if (::access(path.c_str(), R_OK) != 0) {
    error(n.mark, n.path,
          fmt::format("cannot read {}: {}", file_name(n, path), std::strerror(errno)));
    return false;
  }
  if (private_data && (st.st_mode & S_IROTH) != 0) {
    warning(n.mark, n.path,
            fmt::format("{} holds a secret but every user may read it (mode {:04o}); run "
                        "'chmod o-rwx' on it",
                        file_name(n, path), st.st_mode & 07777));
  }
  return true;
}

bool Parser::check_executable(const Node& n, const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error(n.mark, n.path,
          fmt::format("cannot run {}: {}", file_name(n, path), std::strerror(errno)));
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    error(n.mark, n.path, fmt::format("{} is not a regular file", file_name(n, path)));
    return false;
  }
  if (::access(path.c_str(), X_OK) != 0 || (st.st_mode & 0111) == 0) {
    error(n.mark, n.path, fmt::format("{} is not executable (chmod +x)", file_name(n, path)));
    return false;
  }
  return true;
}

std::optional<std::string> Parser::read_secret_file(const Node& n,
                                                    const std::filesystem::path& path) {
  if (!check_file(n, path, true)) return std::nullopt;
  constexpr std::size_t kMaxSecret = 64 * 1024;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    error(n.mark, n.path,
          fmt::format("cannot read {}: {}", file_name(n, path), std::strerror(errno)));
    return std::nullopt;
  }
  std::string content;
  char buffer[4096];
  while (content.size() <= kMaxSecret) {
    ssize_t got_bytes = ::read(fd, buffer, sizeof buffer);
    if (got_bytes < 0 && errno == EINTR) continue;
    if (got_bytes <= 0) break;
    content.append(buffer, static_cast<std::size_t>(got_bytes));
  }
  ::close(fd);
  if (content.size() > kMaxSecret) {
    error(n.mark, n.path,
          fmt::format("{} is larger than 64 KiB; a secret file holds only the secret",
                      file_name(n, path)));
    return std::nullopt;
  }
  while (!content.empty() && (content.back() == '\n' || content.back() == '\r')) {
    content.pop_back();
  }
  if (content.empty()) {
    error(n.mark, n.path, fmt::format("{} is empty", file_name(n, path)));
    return std::nullopt;
  }
  return content;
}

void Parser::unknown_key(const Entry& e, const std::vector<std::string>& allowed,
                         const std::string& section_path) {
  std::string path = join_path(section_path, e.key);
  if (e.key == "<<") {
    error(e.key_mark, path,
          "YAML merge keys ('<<') are not supported; write the keys out, or give the whole "
          "section an anchor (&name) and reuse it (*name)");
    return;
  }
  auto hint = closest(e.key, allowed);
  if (!hint.empty()) {
    error(e.key_mark, path, fmt::format("unknown key '{}'; did you mean '{}'?", e.key, hint));
  } else {
    error(e.key_mark, path,
          fmt::format("unknown key '{}'; allowed keys here: {}", e.key, quoted_list(allowed)));
  }
}

}  // namespace detail
}  // namespace mqdr::config
