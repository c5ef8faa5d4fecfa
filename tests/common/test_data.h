#pragma once
// Real models/tokenizers/datasets live in ../shared/data (never in this repo). Tests that need them call
// require_data(), which skips the test with a message naming the missing file instead of passing silently.
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

// Returns the path when it exists; otherwise marks the calling test skipped (use ASSERT-style: the macro form).
#define POCKETLORA_REQUIRE_DATA(var, rel)                                                              \
  const std::filesystem::path var = ::pocketlora::test::data_path(rel);                                 \
  if (!std::filesystem::exists(var)) GTEST_SKIP() << "shared data file missing: " << var.string()       \
                                                  << " (set POCKETLORA_DATA to the shared/data folder)"

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
