// `cmake --install` of this build tree (config/install.cmake): the binary, the systemd unit
// pointing at it, the sysusers entry, the example config (never replacing a real one) and the
// docs land where Debian users expect them, under a prefix and under DESTDIR.
#include <gtest/gtest.h>

#include "tests/unit/ops/ops_util.hpp"

namespace mqdr::ops_test {
namespace {

const fs::path kSource = MQDR_SOURCE_DIR;
const fs::path kBuild = MQDR_BUILD_DIR;

Result cmake_install(const fs::path& prefix, const std::map<std::string, std::string>& env = {}) {
  return run({"cmake", "--install", kBuild.string(), "--prefix", prefix.string()}, env);
}

std::string line_starting(const std::string& text, const std::string& prefix) {
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return "";
}

TEST(Install, PutsEverythingUnderThePrefix) {
  TempDir dir("install");
  const fs::path root = dir / "root";
  auto r = cmake_install(root);
  ASSERT_EQ(r.code, 0) << r.output;

  const fs::path bin = root / "bin" / "mqdr";
  ASSERT_TRUE(is_executable(bin)) << r.output;
  auto version = run({bin.string(), "version"});
  EXPECT_EQ(version.code, 0) << version.output;
  EXPECT_NE(version.output.find(MQDR_VERSION), std::string::npos) << version.output;

  const fs::path unit = root / "lib" / "systemd" / "system" / "mqdr.service";
  ASSERT_TRUE(fs::is_regular_file(unit)) << r.output;
  const std::string text = slurp(unit);
  EXPECT_EQ(line_starting(text, "ExecStart="),
            "ExecStart=" + bin.string() + " run -c " + (root / "etc/mqdr/mqdr.yaml").string());
  EXPECT_EQ(line_starting(text, "ExecReload="),
            "ExecReload=" + bin.string() + " validate --strict -c " +
                (root / "etc/mqdr/mqdr.yaml").string());
  EXPECT_EQ(text.find("/usr/bin/mqdr"), std::string::npos);
  // The installed unit, whose binary now exists, passes systemd's own check unchanged.
  ASSERT_TRUE(which("systemd-analyze"))
      << "systemd-analyze is not installed: run scripts/setup.sh (Debian package systemd)";
  auto verify = run({"systemd-analyze", "verify", "--man=no", unit.string()});
  EXPECT_EQ(verify.code, 0) << verify.output;
  EXPECT_EQ(verify.output.find("mqdr"), std::string::npos) << verify.output;

  const fs::path sysusers = root / "lib" / "sysusers.d" / "mqdr.conf";
  ASSERT_TRUE(fs::is_regular_file(sysusers));
  EXPECT_NE(slurp(sysusers).find("u mqdr "), std::string::npos);

  const fs::path example = root / "etc" / "mqdr" / "mqdr.yaml.example";
  ASSERT_TRUE(fs::is_regular_file(example));
  EXPECT_EQ(slurp(example), slurp(kSource / "config" / "mqdr.example.yaml"));
  EXPECT_FALSE(fs::exists(root / "etc" / "mqdr" / "mqdr.yaml"))
      << "install must not create a live config";

  const fs::path doc = root / "share" / "doc" / "mqdr";
  EXPECT_TRUE(fs::is_regular_file(doc / "operations.md"));
  for (const char* name : {"README.md", "LICENSE"}) {
    if (fs::exists(kSource / name)) {
      EXPECT_TRUE(fs::is_regular_file(doc / name)) << name;
    }
  }
  if (fs::is_directory(kSource / "docs")) {
    for (const auto& e : fs::directory_iterator(kSource / "docs")) {
      if (e.path().extension() == ".md") {
        EXPECT_TRUE(fs::is_regular_file(doc / e.path().filename())) << e.path();
      }
    }
  }
}

TEST(Install, KeepsAnExistingConfig) {
  TempDir dir("install-keep");
  const fs::path root = dir / "root";
  fs::create_directories(root / "etc" / "mqdr");
  const std::string mine = "# the operator's config\nversion: 1\n";
  spit(root / "etc" / "mqdr" / "mqdr.yaml", mine);
  spit(root / "etc" / "mqdr" / "mqdr.yaml.example", "# an old example\n");
  auto r = cmake_install(root);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(slurp(root / "etc" / "mqdr" / "mqdr.yaml"), mine);
  // The example is the packaged one again (it is documentation, not configuration).
  EXPECT_EQ(slurp(root / "etc" / "mqdr" / "mqdr.yaml.example"),
            slurp(kSource / "config" / "mqdr.example.yaml"));
  // A second install changes nothing either.
  ASSERT_EQ(cmake_install(root).code, 0);
  EXPECT_EQ(slurp(root / "etc" / "mqdr" / "mqdr.yaml"), mine);
}

TEST(Install, DebianLayoutWithUsrPrefixAndDestdir) {
  // What a Debian package build does: --prefix /usr with DESTDIR as the staging root. The
  // config goes to /etc (not /usr/etc) and the unit names /usr/bin/mqdr.
  TempDir dir("install-deb");
  const fs::path stage = dir / "stage";
  auto r = cmake_install("/usr", {{"DESTDIR", stage.string()}});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(is_executable(stage / "usr/bin/mqdr"));
  EXPECT_TRUE(fs::is_regular_file(stage / "etc/mqdr/mqdr.yaml.example"));
  EXPECT_FALSE(fs::exists(stage / "usr/etc"));
  EXPECT_TRUE(fs::is_regular_file(stage / "usr/lib/sysusers.d/mqdr.conf"));
  EXPECT_TRUE(fs::is_regular_file(stage / "usr/share/doc/mqdr/operations.md"));
  const fs::path unit = stage / "usr/lib/systemd/system/mqdr.service";
  ASSERT_TRUE(fs::is_regular_file(unit));
  EXPECT_EQ(slurp(unit), slurp(kSource / "config" / "mqdr.service"))
      << "with prefix /usr the installed unit is the source unit unchanged";
}

}  // namespace
}  // namespace mqdr::ops_test
