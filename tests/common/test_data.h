#pragma once
// Real models/tokenizers/datasets live in ../shared/data (never in this repo). Tests that need them call
// POCKETLORA_REQUIRE_DATA, which skips (or, under POCKETLORA_REQUIRE_DATA=1, fails) the test with a message naming
// the missing file instead of passing silently.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace pocketlora::test {

inline std::filesystem::path data_dir() {
  if (const char* env = std::getenv("POCKETLORA_DATA"); env && *env) return env;
  return POCKETLORA_DEFAULT_DATA_DIR;
}

inline std::filesystem::path data_path(const std::string& rel) { return data_dir() / rel; }

// POCKETLORA_REQUIRE_DATA=1 (scripts/test.sh sets it) turns a missing data file from a skip into a failure, so
// the data tests cannot silently drop out of a green run — as POCKETLORA_REQUIRE_GPU=1 does for the device.
inline bool data_required() {
  const char* env = std::getenv("POCKETLORA_REQUIRE_DATA");
  return env && std::string(env) == "1";
}

inline std::string missing_data_message(const std::filesystem::path& p) {
  return "shared data file missing: " + p.string() + " (set POCKETLORA_DATA to the shared/data folder)";
}

// Declares `var` = the data file's path. When it does not exist the calling test returns: failed under
// POCKETLORA_REQUIRE_DATA=1, skipped otherwise (ASSERT-style, so only in functions returning void).
#define POCKETLORA_REQUIRE_DATA(var, rel)                                                  \
  const std::filesystem::path var = ::pocketlora::test::data_path(rel);                     \
  if (std::filesystem::exists(var)) {                                                       \
  } else if (::pocketlora::test::data_required())                                           \
    FAIL() << ::pocketlora::test::missing_data_message(var) << " and POCKETLORA_REQUIRE_DATA=1"; \
  else                                                                                      \
    GTEST_SKIP() << ::pocketlora::test::missing_data_message(var)

// A scratch directory unique to the running test, removed at the end of the test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace pocketlora::test
