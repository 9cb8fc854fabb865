// load() and load_string(): file-level checks, then YAML, then the key tables (schema.cpp) and
// the checks across sections (validate.cpp). Nothing escapes but config::Error.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "config/reader.hpp"
#include "config/schema.hpp"
#include "mqdr/config_loader.hpp"

namespace mqdr::config {

namespace {

YAML::Mark mark_at(int line, int column) {
  YAML::Mark m;
  m.line = line;
  m.column = column;
  return m;
}

// Byte-level checks before YAML sees the text: yaml-cpp stops silently at a NUL byte and takes
// other binary content as text, so a wrong file would load as something else entirely.
bool check_bytes(detail::Parser& p, std::string_view text) {
  int line = 0;
  std::size_t line_start = 0;
  auto column = [&](std::size_t i) { return static_cast<int>(i - line_start); };
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      line_start = ++i;
      continue;
    }
    if (c == 0) {
      p.error(mark_at(line, column(i)), "", "contains a NUL byte: this is a binary file, not YAML");
      return false;
    }
    if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
      p.error(mark_at(line, column(i)), "",
              fmt::format("contains the control character 0x{:02x}: is this a binary file?", c));
      return false;
    }
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    unsigned code = 0;
    if ((c & 0xE0) == 0xC0) {
      length = 2;
      code = c & 0x1FU;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      code = c & 0x0FU;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      code = c & 0x07U;
    }
    bool valid = length != 0 && i + length <= text.size();
    for (std::size_t k = 1; valid && k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      valid = (next & 0xC0) == 0x80;
      code = (code << 6) | (next & 0x3FU);
    }
    valid = valid && !(length == 2 && code < 0x80) && !(length == 3 && code < 0x800) &&
            !(length == 4 && code < 0x10000) && code <= 0x10FFFF &&
            !(code >= 0xD800 && code <= 0xDFFF);
    if (!valid) {
      p.error(mark_at(line, column(i)), "",
              "not valid UTF-8: is this a binary file? (a config must be UTF-8 text)");
      return false;
    }
    i += length;
  }
  return true;
}

// In [ ] and { }, a plain value cannot contain '{' or '}', so `servers: [${URL}]` is a syntax
// error whose yaml-cpp message does not help; say what to do when that is the likely cause.
std::string flow_hint(std::string_view text, const YAML::Mark& mark) {
  if (mark.line < 0) return {};
  // Look at the line of the error and the one before it.
  bool dollar = false;
  bool flow = false;
  int line = 0;
  std::size_t start = 0;
  while (start <= text.size() && line <= mark.line) {
    std::size_t end = std::min(text.find('\n', start), text.size());
    if (line >= mark.line - 1) {
      auto content = text.substr(start, end - start);
      dollar = dollar || content.find("${") != std::string_view::npos;
      flow = flow || content.find_first_of("[{") != std::string_view::npos;
    }
    start = end + 1;
    ++line;
  }
  if (!dollar || !flow) return {};
  return "; inside [ ] or { }, quote values that use ${...}, e.g. [\"${NAME}\"]";
}

// Counts the documents of the stream and whether each one is empty, without building nodes.
class DocumentScan : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    start = mark;
    empty = true;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { empty = false; }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
    empty = false;
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    empty = false;
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    empty = false;
  }
  void OnMapEnd() override {}

  YAML::Mark start;
  bool empty = true;
};

struct Documents {
  int count = 0;
  std::optional<YAML::Mark> second;  // where a second document starts
  std::optional<YAML::Mark> stuck;   // where the parser stopped making progress
};

// yaml-cpp 0.7's LoadAll() never returns on some invalid input (a stray ',' in block context:
// yaml-cpp issue #1040, fixed upstream by PR #1319): the parser keeps producing empty documents
// at the same position, each one allocated, until memory runs out. Walk the documents here,
// stop after the second, and call an empty document that starts where the previous one did a
// syntax error at that position.
Documents scan_documents(std::string_view body) {
  Documents out;
  std::stringstream stream{std::string(body)};
  YAML::Parser parser(stream);
  std::optional<YAML::Mark> previous;
  // Three documents at most: enough to see a second one, and a stuck parser after an empty
  // first document ("," alone) or after a good one ("- a" then ",").
  for (int i = 0; i < 3; ++i) {
    DocumentScan scan;
    if (!parser.HandleNextDocument(scan)) break;
    if (scan.empty && previous && previous->pos == scan.start.pos) {
      out.stuck = scan.start;
      break;
    }
    if (out.count == 1) out.second = scan.start;
    previous = scan.start;
    ++out.count;
  }
  return out;
}

// yaml-cpp's messages, minus the fragments of content some of them end with (a character of a
// bad escape may belong to a secret).
std::string yaml_message(const std::string& msg) {
  if (msg == YAML::ErrorMsg::BAD_FILE) return "nested too deeply";
  if (msg.rfind(YAML::ErrorMsg::INVALID_ESCAPE, 0) == 0) {
    return "unknown escape sequence in a double-quoted string (write \\\\ for a backslash, or "
           "use single quotes)";
  }
  if (msg.rfind(YAML::ErrorMsg::INVALID_UNICODE, 0) == 0) {
    return "invalid \\u or \\U escape in a double-quoted string";
  }
  if (msg.rfind(YAML::ErrorMsg::YAML_VERSION, 0) == 0) return "bad %YAML directive";
  return msg;
}

void parse_text(detail::Parser& p, const std::string& text) {
  if (text.size() > kMaxConfigBytes) {
    p.file_error(fmt::format("is {} bytes; a config file may have at most 16 MiB", text.size()));
    return;
  }
  std::string_view body = text;
  if (body.starts_with("\xFF\xFE") || body.starts_with("\xFE\xFF")) {
    p.file_error("is UTF-16 text; save it as UTF-8");
    return;
  }
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);  // a UTF-8 byte order mark
  if (!check_bytes(p, body)) return;

  YAML::Node root;
  try {
    auto docs = scan_documents(body);
    if (docs.stuck) {
      std::string what = "the parser cannot go on here";
      auto at = static_cast<std::size_t>(std::max(docs.stuck->pos, 0));
      if (at < body.size() && std::string_view(",]}").find(body[at]) != std::string_view::npos) {
        what = fmt::format("unexpected '{}'", body[at]);
      }
      p.error(*docs.stuck, "", "invalid YAML: " + what);
      return;
    }
    if (docs.count == 0) {
      p.file_error("the file is empty; a config starts with 'version: 1'");
      return;
    }
    if (docs.second) {
      p.error(*docs.second, "",
              "a second YAML document (after '---'); a config file holds exactly one");
    }
    root = YAML::Load(std::string(body));  // the first document
  } catch (const YAML::Exception& e) {
    p.error(e.mark, "", "invalid YAML: " + yaml_message(e.msg) + flow_hint(body, e.mark));
    return;
  } catch (const std::exception& e) {
    p.file_error(std::string("cannot parse the YAML: ") + e.what());
    return;
  }
  if (root.IsNull()) {
    p.file_error("the file is empty; a config starts with 'version: 1'");
    return;
  }
  if (!root.IsMap()) {
    p.error(root.Mark(), "",
            "the top level must be a mapping of keys (version: 1, clusters: ..., mirrors: ...), "
            "not " + detail::Parser::describe(root));
    return;
  }
  try {
    detail::parse_root(p, detail::Node{root, "", root.Mark()});
    detail::check_references(p);
  } catch (const std::exception& e) {
    // A bug of ours, not of the file; still a clear message rather than a crash.
    p.file_error(std::string("internal error while reading the config: ") + e.what());
  }
}

}  // namespace

Config load_string(const std::string& text, const std::string& file, const LoadOptions& options,
                   std::vector<Problem>* warnings) {
  std::filesystem::path base = options.base_dir && !options.base_dir->empty()
                                    ? *options.base_dir
                                    : std::filesystem::path(file).parent_path();
  if (base.empty()) base = ".";
  std::error_code ec;
  auto absolute = std::filesystem::absolute(base, ec);
  if (!ec) base = absolute.lexically_normal();

  detail::Parser p(file, options, base);
  p.cfg.file = file;
  parse_text(p, text);
  bool failed = p.has_errors();
  auto problems = p.take_problems();
  if (failed) throw Error(std::move(problems));
  if (warnings != nullptr) *warnings = std::move(problems);
  return std::move(p.cfg);
}

Config load(const std::filesystem::path& file, const LoadOptions& options,
            std::vector<Problem>* warnings) {
  const std::string name = file.string();
  auto fail = [&](std::string message) {
    Problem p;
    p.file = name.empty() ? "mqdr" : name;
    p.message = std::move(message);
    throw Error({std::move(p)});
  };
  if (name.empty()) fail("no config file given (-c FILE)");
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) fail(fmt::format("cannot read: {}", std::strerror(errno)));
  if (S_ISDIR(st.st_mode)) fail("is a directory; expected a YAML file");
  if (!S_ISREG(st.st_mode)) fail("is not a regular file; expected a YAML file");
  if (static_cast<std::uintmax_t>(st.st_size) > kMaxConfigBytes) {
    fail(fmt::format("is {} bytes; a config file may have at most 16 MiB", st.st_size));
  }
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(fmt::format("cannot read: {}", std::strerror(errno)));
  std::string text;
  char buffer[65536];
  int read_errno = 0;
  while (text.size() <= kMaxConfigBytes) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) read_errno = errno;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (read_errno != 0) fail(fmt::format("cannot read: {}", std::strerror(read_errno)));
  if (text.size() > kMaxConfigBytes) {
    fail("is larger than 16 MiB; a config file may have at most 16 MiB");
  }
  LoadOptions with_base = options;
  if (!with_base.base_dir || with_base.base_dir->empty()) {
    std::error_code ec;
    auto absolute = std::filesystem::absolute(file, ec);
    with_base.base_dir = (ec ? file : absolute).parent_path();
  }
  return load_string(text, name, with_base, warnings);
}

}  // namespace mqdr::config
