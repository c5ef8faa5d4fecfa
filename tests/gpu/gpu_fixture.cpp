#include "gpu/gpu_fixture.h"

#include <cstdlib>

#include "runtime/error.h"
#include "runtime/instance.h"

namespace pocketlora::test {

vk::Device* GpuTest::shared_device(std::string* why) {
  static std::unique_ptr<vk::Device> device;
  static std::string error;
  static bool tried = false;
  if (!tried) {
    tried = true;
    try {
      device = std::make_unique<vk::Device>();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (why) *why = error;
  return device.get();
}

void GpuTest::SetUp() {
  std::string why;
  device_ = shared_device(&why);
  if (!device_) {
    const char* req = std::getenv("POCKETLORA_REQUIRE_GPU");
    if (req && *req == '1') FAIL() << "POCKETLORA_REQUIRE_GPU=1 but no Vulkan device: " << why;
    GTEST_SKIP() << "no Vulkan device (" << why << ") — install mesa-vulkan-drivers to run GPU tests on the CPU";
  }
  arena_ = std::make_unique<vk::Arena>(*device_, vk::Lifetime::Scratch, "test");
  vk::ValidationLog::global().take();
  validation_before_ = vk::ValidationLog::global().count();
}

void GpuTest::TearDown() {
  if (!device_) return;
  arena_.reset();
  const auto n = vk::ValidationLog::global().count() - validation_before_;
  if (n != 0) {
    std::string all;
    for (auto& m : vk::ValidationLog::global().take()) all += "\n  " + m;
    ADD_FAILURE() << n << " Vulkan validation message(s) during this test:" << all;
  }
}

}  // namespace pocketlora::test
