#include "test_util.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
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

}  // namespace mqdr::config::test
