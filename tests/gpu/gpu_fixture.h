#pragma once
// Base fixture for GPU tests: one shared Device for the whole binary (validation layer on when
// POCKETLORA_VALIDATION=1, as ctest sets it), a per-test arena, and a check after every test that the
// validation layer printed nothing. Without a Vulkan device the test is skipped with the reason — unless
// POCKETLORA_REQUIRE_GPU=1 (CI with lavapipe), where a missing device is a failure.
#include <gtest/gtest.h>

#include <memory>

#include "host/ops/device_tensor.h"
#include "runtime/device.h"

namespace pocketlora::test {

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

}  // namespace pocketlora::test
