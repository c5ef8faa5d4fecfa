// Vulkan is loaded at run time (runtime/vulkan_loader.h): no loader is a clear NoDevice error and the CPU backend
// still runs; the binaries carry no link-time dependency on libvulkan.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/run_cli.h"
#include "common/scoped_env.h"
#include "common/test_data.h"
#include "runtime/error.h"
#include "runtime/instance.h"
#include "runtime/vulkan_loader.h"

using namespace pocketlora;

namespace {

using test::ScopedEnv;

const char* kMissingLoader = "/nonexistent/pocketlora-test/libvulkan.so.1";

TEST(VulkanLoader, CandidatesAreTheVersionedNameThenAndroidsUnlessOverridden) {
  {
    ScopedEnv env("POCKETLORA_VULKAN_LOADER", "");
    EXPECT_EQ(vk::vulkan_loader_candidates(), (std::vector<std::string>{"libvulkan.so.1", "libvulkan.so"}));
  }
  ScopedEnv env("POCKETLORA_VULKAN_LOADER", kMissingLoader);
  EXPECT_EQ(vk::vulkan_loader_candidates(), std::vector<std::string>{kMissingLoader});
}

TEST(VulkanLoader, InstanceWorksThroughTheLoadedCommands) {
  try {
    vk::Instance inst(false);
    EXPECT_NE(vk::vkCreateDevice, nullptr);
    EXPECT_NE(vk::vkCmdDispatch, nullptr);
    (void)inst.physical_devices();
  } catch (const vk::NoDevice& e) {
    GTEST_SKIP() << "no Vulkan loader or driver here: " << e.what();
  }
}

// The CLI in a process whose loader is missing: `--backend auto` falls back to the CPU with the same output as
// `--backend cpu`; asking for Vulkan is the no_device error that names the loader.
TEST(VulkanLoader, MissingLoaderIsNoDeviceAndAutoFallsBackToCpu) {
  POCKETLORA_REQUIRE_DATA(model, "models/stories260K/stories260K.bin");
  const std::string gen = "generate --model " + model.string() + " --prompt 'Once' --max-tokens 12 --backend ";
  const auto cpu = test::run_cli(gen + "cpu --quiet", "2>/dev/null");
  ASSERT_EQ(cpu.rc, 0) << cpu.out;

  ScopedEnv env("POCKETLORA_VULKAN_LOADER", kMissingLoader);
  const auto autob = test::run_cli(gen + "auto", "2>&1");
  ASSERT_EQ(autob.rc, 0) << autob.out;
  EXPECT_NE(autob.out.find("[cpu"), std::string::npos) << autob.out;
  EXPECT_EQ(test::run_cli(gen + "auto --quiet", "2>/dev/null").out, cpu.out);

  for (const std::string& args : {gen + "vulkan", std::string("devices")}) {
    const auto r = test::run_cli(args);
    EXPECT_EQ(r.rc, 1) << args << ": " << r.out;
    EXPECT_NE(r.out.find("no Vulkan loader (libvulkan.so.1) found"), std::string::npos) << args << ": " << r.out;
    EXPECT_NE(r.out.find(kMissingLoader), std::string::npos) << args << ": " << r.out;
  }
}

}  // namespace
