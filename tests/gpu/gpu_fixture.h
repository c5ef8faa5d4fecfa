#pragma once
// Base fixture for GPU tests: one shared Device for the whole binary (validation layer on when
// POCKETLORA_VALIDATION=1, as ctest sets it), a per-test arena, and a check after every test that the
// validation layer printed nothing. Without a Vulkan device the test is skipped with the reason — unless
// POCKETLORA_REQUIRE_GPU=1 (CI with lavapipe), where a missing device is a failure.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/test_data.h"
#include "host/ops/device_tensor.h"
#include "runtime/device.h"

namespace pocketlora::test {

// True when POCKETLORA_REQUIRE_GPU=1: a missing Vulkan device fails the test instead of skipping it.
bool gpu_required();

class GpuTest : public ::testing::Test {
 public:
  // Shared device, or nullptr with the reason in `why`.
  static vk::Device* shared_device(std::string* why);

 protected:
  void SetUp() override;
  void TearDown() override;

  vk::Device& dev() { return *device_; }
  vk::Arena& arena() { return *arena_; }
  ops::DeviceTensor up(const Tensor& t, const std::string& what = "test input") {
    return ops::upload(dev(), arena(), t, what);
  }
  Tensor down(const ops::DeviceTensor& t) { return ops::download(dev(), t); }

 private:
  vk::Device* device_ = nullptr;
  std::unique_ptr<vk::Arena> arena_;
  std::uint64_t validation_before_ = 0;
};

// For plain TESTs that open their own device (profile override, pipeline cache, a subprocess): returns from the
// test when no Vulkan device can be opened — a failure under POCKETLORA_REQUIRE_GPU=1, a skip otherwise.
#define POCKETLORA_REQUIRE_GPU()                                                                     \
  if (std::string why_no_gpu; ::pocketlora::test::GpuTest::shared_device(&why_no_gpu)) {            \
  } else if (::pocketlora::test::gpu_required())                                                    \
    FAIL() << "POCKETLORA_REQUIRE_GPU=1 but no Vulkan device: " << why_no_gpu;                       \
  else                                                                                              \
    GTEST_SKIP() << "no Vulkan device (" << why_no_gpu << ")"

// Fails the running test if the validation layer reports anything between construction and destruction.
// Declare it before any device it should watch, so that device's teardown messages are counted too.
class ValidationWatch {
 public:
  ValidationWatch();
  ~ValidationWatch();
  ValidationWatch(const ValidationWatch&) = delete;
  ValidationWatch& operator=(const ValidationWatch&) = delete;

 private:
  std::uint64_t before_;
};

// A test's own device with its own options and a scratch arena, watched by the validation layer for its whole
// life (create it after POCKETLORA_REQUIRE_GPU()).
class OwnDevice {
 public:
  explicit OwnDevice(vk::DeviceOptions options = {});
  vk::Device& dev() { return device_; }
  vk::Arena& arena() { return arena_; }

 private:
  ValidationWatch watch_;  // first member: destroyed last, after the device
  vk::Device device_;
  vk::Arena arena_;
};

// OwnDevice whose device profile has some values overridden (the one way tests run a kernel variant the device's
// own profile does not pick): `params` is the body of a JSON object, e.g. R"("nf4.gemv_subgroup": 0)".
class ProfileOverrideDevice {
 public:
  explicit ProfileOverrideDevice(const std::string& params);
  vk::Device& dev() { return own_.dev(); }
  vk::Arena& arena() { return own_.arena(); }

 private:
  static vk::DeviceOptions options(const TempDir& dir, const std::string& params);
  TempDir dir_;
  OwnDevice own_;
};

}  // namespace pocketlora::test
