#include "common/test_data.h"

#include <unistd.h>

namespace pocketlora::test {

TempDir::TempDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "pocketlora";
  for (auto& c : name)
    if (c == '/') c = '_';
  path_ = std::filesystem::temp_directory_path() / ("pocketlora-test-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace pocketlora::test
