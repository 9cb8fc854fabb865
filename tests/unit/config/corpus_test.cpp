// Walks the two corpora. bad/: every file is a broken config whose header comments say what
// must be reported (see bad/README.md); each expected problem must be reported with exactly that
// line and key path, no other error or warning may be reported, and no value marked secret may
// appear in any message. good/: every file loads, with exactly the warnings it announces.

#include <gtest/gtest.h>

#include <algorithm>

#include "test_util.hpp"

namespace mqdr::config::test {
namespace {

const std::filesystem::path kBad = MQDR_CONFIG_CORPUS;
const std::filesystem::path kGood = kBad.parent_path() / "good";

// Every expectation met, and nothing else reported.
void expect_exactly(const Case& c, const std::vector<Problem>& problems) {
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
}

std::string case_name(const ::testing::TestParamInfo<std::filesystem::path>& info) {
  std::string name = info.param.stem().string();
  for (char& ch : name) {
    if (std::isalnum(static_cast<unsigned char>(ch)) == 0) ch = '_';
  }
  return name;
}

class Bad : public ::testing::TestWithParam<std::filesystem::path> {};

TEST_P(Bad, ReportsExactlyTheExpectedProblems) {
  Case c = read_case(GetParam());
  ASSERT_FALSE(c.expected.empty()) << c.file << " has no '# expect:' line";
  TempDir dir;
  std::vector<Problem> problems;
  std::string what;
  try {
    load_case(c, dir);
  } catch (const Error& e) {
    problems = e.problems();
    what = e.what();
  }
  ASSERT_FALSE(problems.empty()) << c.file << " loaded without errors";
  expect_exactly(c, problems);
  std::string all = dump(problems);
  for (const auto& secret : c.secrets) {
    EXPECT_EQ(all.find(secret), std::string::npos) << "secret '" << secret << "' shown:\n" << all;
    EXPECT_EQ(what.find(secret), std::string::npos) << "secret '" << secret << "' in what()";
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, Bad, ::testing::ValuesIn(corpus_files(kBad)), case_name);

class Good : public ::testing::TestWithParam<std::filesystem::path> {};

TEST_P(Good, LoadsWithExactlyTheAnnouncedWarnings) {
  Case c = read_case(GetParam());
  TempDir dir;
  std::vector<Problem> warnings;
  try {
    load_case(c, dir, &warnings);
  } catch (const Error& e) {
    FAIL() << e.what();
  }
  expect_exactly(c, warnings);
}

INSTANTIATE_TEST_SUITE_P(Corpus, Good, ::testing::ValuesIn(corpus_files(kGood)), case_name);

TEST(CorpusSize, AtLeastFortyBadFilesAndOneGoodFilePerFeature) {
  EXPECT_GE(corpus_files(kBad).size(), 40U);
  EXPECT_GE(corpus_files(kGood).size(), 9U);
}

}  // namespace
}  // namespace mqdr::config::test
