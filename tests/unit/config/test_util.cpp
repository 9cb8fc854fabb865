#include "test_util.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace mqdr::config::test {

const char* const kBase = R"(version: 1
clusters:
  a: {kind: kafka, bootstrap_servers: "a1:9092"}
  b: {kind: kafka, bootstrap_servers: "b1:9092"}
mirrors:
  - {name: m, source: a, target: b, topics: [t]}
)";

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "mqdr-config-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path TempDir::write(const std::string& name, const std::string& content,
                                     mode_t mode) const {
  auto file = path_ / name;
  std::filesystem::create_directories(file.parent_path());
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << content;
  }
  ::chmod(file.c_str(), mode);
  return file;
}

LoadOptions options(const Env& env, const std::filesystem::path& base_dir) {
  LoadOptions o;
  o.env = [env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  if (!base_dir.empty()) o.base_dir = base_dir;
  return o;
}

std::vector<Problem> problems_of(const std::string& yaml, const Env& env,
                                 const std::filesystem::path& base_dir) {
  try {
    load_string(yaml, "test.yaml", options(env, base_dir));
  } catch (const Error& e) {
    return e.problems();
  }
  return {};
}

std::string dump(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) out += p.str() + "\n";
  return out;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Case read_case(const std::filesystem::path& file) {
  Case c;
  c.file = file;
  static const std::regex kExpect(R"(^# (expect|warn): (\d+) (.*?): (.+)$)");
  static const std::regex kEnv(R"(^# env: ([A-Za-z_][A-Za-z0-9_]*)=(.*)$)");
  static const std::regex kSecret(R"(^# secret: (.+)$)");
  static const std::regex kFile(R"(^# file: (\S+) ([0-7]{3,4}) ?(.*)$)");
  std::istringstream in(read_file(file));
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, kExpect)) {
      c.expected.push_back({m[1] == "warn", std::stoi(m[2]), m[3], m[4]});
    } else if (std::regex_match(line, m, kEnv)) {
      c.env[m[1]] = m[2];
    } else if (std::regex_match(line, m, kSecret)) {
      c.secrets.push_back(m[1]);
    } else if (std::regex_match(line, m, kFile)) {
      c.files.push_back({m[1], static_cast<mode_t>(std::stoi(m[2], nullptr, 8)), m[3]});
    }
  }
  return c;
}

void create_files(const Case& c, const TempDir& dir) {
  for (const auto& f : c.files) dir.write(f.name, f.content + "\n", f.mode);
}

std::vector<std::filesystem::path> corpus_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

Config load_case(const Case& c, const TempDir& dir, std::vector<Problem>* warnings) {
  create_files(c, dir);
  return load(c.file, options(c.env, dir.path()), warnings);
}

}  // namespace mqdr::config::test
