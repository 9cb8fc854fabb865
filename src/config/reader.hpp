#pragma once
// Internal to src/config: the Parser collects every problem of one load with its position and
// key path, and reads typed values out of YAML nodes as the key tables describe them.
// One Parser per load() call; single-threaded; it owns the Config being built.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/schema.hpp"
#include "mqdr/config_loader.hpp"

namespace mqdr::config::detail {

// A scalar after ${NAME} substitution. `from_env` values are never shown in messages.
struct Scalar {
  std::string text;
  bool from_env = false;
};

// Levenshtein distance with adjacent transpositions (optimal string alignment), ASCII
// case-insensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);
// The closest candidate when it is close enough to be a likely misspelling, else "".
std::string closest(std::string_view word, const std::vector<std::string>& candidates);

// Empty when the regex is fine, else why not.
std::string check_regex(const std::string& pattern);

// [A-Za-z0-9][A-Za-z0-9_-]{0,63}
bool valid_name(std::string_view name);

inline constexpr std::size_t kMaxProblems = 1000;

class Parser {
 public:
  Parser(std::string file, const LoadOptions& options, std::filesystem::path base_dir);

  Config cfg;  // being built: mirrors and plans look up the clusters read before them
  std::optional<ClusterKind> kind;  // of the cluster/mirror/plan being read; nullopt = unknown
  struct Scratch {  // facts one key leaves for the section's finish() check
    bool uri_user = false;
    bool uri_password = false;
    bool uri_tls = false;
  } scratch;

  // -- problems
  void error(const YAML::Mark& mark, const std::string& path, std::string message);
  void warning(const YAML::Mark& mark, const std::string& path, std::string message);
  void file_error(std::string message);  // about the whole file (no line)
  bool has_errors() const;
  std::vector<Problem> take_problems();  // sorted by position, duplicates dropped

  // -- positions of values read so far, by key path (for checks across sections)
  void record(const std::string& path, const YAML::Mark& mark);
  YAML::Mark mark_of(const std::string& path) const;
  int line_of(const std::string& path) const;  // 1-based, 0 when unknown
  // "'value'" for messages about the value read at `path`, or "" when it came from ${ENV}.
  std::string quote(const std::string& path, const std::string& value) const;

  // -- structure
  Entries entries(const Node& map);  // reports non-scalar and duplicate keys
  std::vector<Node> items(const Node& seq);
  static std::string describe(const YAML::Node& node);  // "a list", "a mapping", ...

  // -- scalars
  std::optional<Scalar> scalar(const Node& n, std::string_view expected, bool secret);
  std::optional<std::string> peek(const Node& n);  // substituted text, no problems reported
  static std::string got(const Scalar& s, bool secret);  // ", got 'x'" or "" when not showable

  // -- typed values; each reports its own problem and returns nullopt after one
  std::optional<std::string> text(const Spec& spec, const Node& n);  // string-like types
  std::optional<std::int64_t> integer(const Spec& spec, const Node& n);
  std::optional<std::int64_t> size(const Spec& spec, const Node& n);
  std::optional<double> number(const Spec& spec, const Node& n);
  std::optional<bool> boolean(const Spec& spec, const Node& n);
  std::optional<Duration> duration(const Spec& spec, const Node& n);
  std::optional<int> choice(const Spec& spec, const Node& n);
  std::optional<Secret> secret(const Spec& spec, const Node& n);
  // Reads the file named by the value; `resolved` gets its absolute path.
  std::optional<Secret> secret_file(const Spec& spec, const Node& n,
                                    std::string* resolved = nullptr);
  std::optional<std::vector<std::string>> list(const Spec& spec, const Node& n);
  // A mapping of names to scalars. Values are never shown in messages (they may be secrets).
  std::optional<std::map<std::string, std::string>> string_map(const Spec& spec, const Node& n);
  // A list of strings or one comma-separated string; each item with the node to report at.
  std::optional<std::vector<std::pair<Node, std::string>>> list_or_csv(const Spec& spec,
                                                                       const Node& n);

  // -- files
  std::filesystem::path resolve(const std::string& path) const;
  // Checks a file the daemon will open; `private_data` warns when every user may read it.
  bool check_file(const Node& n, const std::filesystem::path& path, bool private_data);
  bool check_executable(const Node& n, const std::filesystem::path& path);
  std::optional<std::string> read_secret_file(const Node& n, const std::filesystem::path& path);
  // "'/etc/mqdr/x.pass'", or a neutral phrase when the path came from ${ENV}.
  std::string file_name(const Node& n, const std::filesystem::path& path) const;

  // -- hints
  void unknown_key(const Entry& e, const std::vector<std::string>& allowed,
                   const std::string& section_path);

 private:
  bool bounds_ok(const Spec& spec, double value, const Node& n, const Scalar& s);
  std::optional<Scalar> substitute(const Node& n, const std::string& in, bool report);
  void add(Problem problem);

  std::string file_;
  LoadOptions options_;
  std::filesystem::path base_dir_;
  std::vector<Problem> problems_;
  std::size_t dropped_ = 0;
  std::map<std::string, YAML::Mark> marks_;
  std::set<std::string> env_paths_;  // values that came (partly) from ${ENV}
};

}  // namespace mqdr::config::detail
