// `pocketlora devices [--json]`: every Vulkan device, its capabilities, and the profile the runtime would use.
#if POCKETLORA_HAS_VULKAN
#include <cstdio>
#include <iostream>

#include <fmt/format.h>

#include "runtime/device.h"
#include "runtime/error.h"
#include "tools/command_registry.h"

namespace pocketlora::cli {
namespace {

int run_devices(bool json) {
  vk::Instance inst;
  auto devices = vk::list_devices(inst);
  const char* env = std::getenv("POCKETLORA_DEVICE");
  std::optional<int> requested;
  if (env && *env) requested = std::atoi(env);
  const int chosen = vk::choose_device(devices, requested);
  if (json) {
    nlohmann::json out;
    out["selected"] = chosen;
    out["devices"] = nlohmann::json::array();
    for (auto& d : devices) {
      nlohmann::json j = d.caps.to_json();
      j["index"] = d.index;
      j["profile"] = vk::DeviceProfile::select(d.caps).to_json();
      out["devices"].push_back(j);
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (auto& d : devices) {
    const auto& c = d.caps;
    auto prof = vk::DeviceProfile::select(c);
    fmt::print("{} [{}] {} ({}, vendor 0x{:04x}, device 0x{:04x}, Vulkan {}.{}.{}, driver {})\n",
               d.index == chosen ? "*" : " ", d.index, c.name, vk::device_type_name(c.type), c.vendor_id,
               c.device_id, VK_API_VERSION_MAJOR(c.api_version), VK_API_VERSION_MINOR(c.api_version),
               VK_API_VERSION_PATCH(c.api_version), c.driver_name.empty() ? "?" : c.driver_name);
    fmt::print("      subgroup {} (arithmetic {}), shared memory {} KiB, max workgroup {} ({}x{}x{})\n",
               c.subgroup_size, c.subgroup_arithmetic() ? "yes" : "no", c.max_shared_memory / 1024,
               c.max_workgroup_invocations, c.max_workgroup_size[0], c.max_workgroup_size[1],
               c.max_workgroup_size[2]);
    fmt::print("      fp16 arith {}, int8 arith {}, 16-bit storage {}, 8-bit storage {}, unified memory {}\n",
               c.fp16_arith, c.int8_arith, c.storage_16bit, c.storage_8bit, c.unified_memory);
    fmt::print("      max storage binding {} MiB, timestamps {} ({} ns/tick), memory budget ext {}\n",
               c.max_storage_buffer_range >> 20, c.timestamps, c.timestamp_period_ns, c.has_memory_budget);
    for (std::size_t h = 0; h < c.heaps.size(); ++h)
      fmt::print("      heap {}: {} MiB{} (budget {} MiB)\n", h, c.heaps[h].size >> 20,
                 c.heaps[h].device_local ? " device-local" : "", c.heaps[h].budget >> 20);
    fmt::print("      profile: {}\n", prof.name());
  }
  return 0;
}

CommandRegistration register_cmd_devices("devices", "List Vulkan devices, their capabilities and the tuning profile", [](CLI::App& sub) {
  auto json = std::make_shared<bool>(false);
  sub.add_flag("--json", *json, "Machine-readable output");
  return [json] { return run_devices(*json); };
});

}  // namespace
}  // namespace pocketlora::cli
#endif  // POCKETLORA_HAS_VULKAN

#if !POCKETLORA_HAS_VULKAN
#include <cstdio>

#include "tools/command_registry.h"

namespace pocketlora::cli {
namespace {
// A CPU-only build still answers, so scripts get a clear reason instead of an unknown-command error.
CommandRegistration register_cmd_devices("devices", "List Vulkan devices (this build has no Vulkan support)", [](CLI::App& sub) {
  sub.allow_extras();
  return [] {
    std::fprintf(stderr, "pocketlora: this build has no Vulkan support (configured with -DPOCKETLORA_VULKAN=OFF); "
                         "only the CPU backend is available\n");
    return 2;
  };
});
}  // namespace
}  // namespace pocketlora::cli
#endif
