// Walks tests/unit/config/bad/: every file is a broken config whose header comments say what
// must be reported (see bad/README.md). Each expected problem must be reported with exactly that
// line and key path, no other error may be reported, and no value marked secret may appear in
// any message.

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <sstream>

#include "test_util.hpp"

namespace mqdr::config::test {
namespace {

struct Expectation {
  bool warning = false;
  int line = 0;
  std::string path;
  std::string substring;
};

struct Case {
  std::filesystem::path file;
  std::vector<Expectation> expected;
  Env env;
  std::vector<std::string> secrets;
  struct File {
    std::string name;
    mode_t mode;
    std::string content;
  };
  std::vector<File> files;
};

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

std::vector<std::filesystem::path> corpus() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(MQDR_CONFIG_CORPUS)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class Corpus : public ::testing::TestWithParam<std::filesystem::path> {};

TEST_P(Corpus, ReportsExactlyTheExpectedProblems) {
  Case c = read_case(GetParam());
  ASSERT_FALSE(c.expected.empty()) << c.file << " has no '# expect:' line";
  TempDir dir;
  for (const auto& f : c.files) {
    dir.write(f.name, f.content.empty() ? std::string("\n") : f.content + "\n", f.mode);
  }

  std::vector<Problem> problems;
  std::string what;
  try {
    load(c.file, options(c.env, dir.path()));
  } catch (const Error& e) {
    problems = e.problems();
    what = e.what();
  }
  ASSERT_FALSE(problems.empty()) << c.file << " loaded without errors";
  std::string all = dump(problems);

  for (const auto& want : c.expected) {
    bool found = std::any_of(problems.begin(), problems.end(), [&](const Problem& p) {
      return p.warning == want.warning && p.line == want.line && p.path == want.path &&
             p.message.find(want.substring) != std::string::npos;
    });
    EXPECT_TRUE(found) << "expected " << (want.warning ? "warning" : "error") << " at line "
                       << want.line << " '" << want.path << "' containing '" << want.substring
                       << "'; got:\n"
                       << all;
  }
  for (bool warning : {false, true}) {
    auto wanted = std::count_if(c.expected.begin(), c.expected.end(),
                                [&](const auto& e) { return e.warning == warning; });
    auto got = std::count_if(problems.begin(), problems.end(),
                             [&](const auto& p) { return p.warning == warning; });
    EXPECT_EQ(wanted, got) << "number of " << (warning ? "warnings" : "errors") << ":\n" << all;
  }
  for (const auto& p : problems) {
    EXPECT_EQ(p.file, c.file.string());
    if (p.line > 0) {
      EXPECT_GT(p.column, 0) << p.str();
    }
  }
  for (const auto& secret : c.secrets) {
    EXPECT_EQ(all.find(secret), std::string::npos) << "secret '" << secret << "' shown:\n" << all;
    EXPECT_EQ(what.find(secret), std::string::npos) << "secret '" << secret << "' in what()";
  }
}

std::string case_name(const ::testing::TestParamInfo<std::filesystem::path>& info) {
  std::string name = info.param.stem().string();
  for (char& ch : name) {
    if (std::isalnum(static_cast<unsigned char>(ch)) == 0) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Bad, Corpus, ::testing::ValuesIn(corpus()), case_name);

TEST(CorpusSize, HasAtLeastFortyFiles) { EXPECT_GE(corpus().size(), 40U); }

}  // namespace
}  // namespace mqdr::config::test
