#include "gpu/gpu_fixture.h"

#include <cstdlib>
#include <fstream>

#include "runtime/error.h"
#include "runtime/instance.h"

namespace pocketlora::test {

bool gpu_required() {
  const char* req = std::getenv("POCKETLORA_REQUIRE_GPU");
  return req && std::string(req) == "1";
}

namespace {
// Adds one failure listing the validation messages counted since `before`, then clears them.
void fail_on_validation_messages(std::uint64_t before) {
  const auto n = vk::ValidationLog::global().count() - before;
  if (n == 0) return;
  std::string all;
  for (auto& m : vk::ValidationLog::global().take()) all += "\n  " + m;
  ADD_FAILURE() << n << " Vulkan validation message(s) during this test:" << all;
}
}  // namespace

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
    if (gpu_required()) FAIL() << "POCKETLORA_REQUIRE_GPU=1 but no Vulkan device: " << why;
    GTEST_SKIP() << "no Vulkan device (" << why << ") — install mesa-vulkan-drivers to run GPU tests on the CPU";
  }
  arena_ = std::make_unique<vk::Arena>(*device_, vk::Lifetime::Scratch, "test");
  vk::ValidationLog::global().take();
  validation_before_ = vk::ValidationLog::global().count();
}

void GpuTest::TearDown() {
  if (!device_) return;
  arena_.reset();
  fail_on_validation_messages(validation_before_);
}

ValidationWatch::ValidationWatch() {
  vk::ValidationLog::global().take();
  before_ = vk::ValidationLog::global().count();
}

ValidationWatch::~ValidationWatch() { fail_on_validation_messages(before_); }

OwnDevice::OwnDevice(vk::DeviceOptions options)
    : device_(std::move(options)), arena_(device_, vk::Lifetime::Scratch, "own device") {}

vk::DeviceOptions ProfileOverrideDevice::options(const TempDir& dir, const std::string& params) {
  const auto path = dir / "profile_override.json";
  std::ofstream(path) << "{\"params\": {" << params << "}}";
  vk::DeviceOptions o;
  o.profile_override = path;
  return o;
}

ProfileOverrideDevice::ProfileOverrideDevice(const std::string& params) : own_(options(dir_, params)) {}

}  // namespace pocketlora::test
