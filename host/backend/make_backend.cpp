#include "host/backend/backend.h"
#include "host/core/error.h"
#include "host/ref/cpu_backend.h"
#if POCKETLORA_HAS_VULKAN
#include "host/ops/vulkan_backend.h"
#endif

namespace pocketlora {

BackendKind resolve_backend_kind(const std::string& s) {
  if (s != "auto") return parse_backend_kind(s);
#if POCKETLORA_HAS_VULKAN
  try {
    vk::Instance inst(false);
    for (const auto& d : vk::list_devices(inst))
      if (d.caps.type != VK_PHYSICAL_DEVICE_TYPE_CPU && d.caps.type != VK_PHYSICAL_DEVICE_TYPE_OTHER)
        return BackendKind::Vulkan;
  } catch (const Error&) {
    // No loader or no driver: the CPU backend.
  }
#endif
  return BackendKind::Cpu;
}

std::unique_ptr<Backend> make_backend(BackendKind kind, std::optional<int> device) {
  if (kind == BackendKind::Cpu) return std::make_unique<ref::CpuBackend>();
#if POCKETLORA_HAS_VULKAN
  vk::DeviceOptions o;
  o.index = device;
  return std::make_unique<ops::VulkanBackend>(std::make_unique<vk::Device>(o));
#else
  (void)device;
  throw CodedError<ErrorCode::NoDevice>("this build of PocketLoRA has no Vulkan backend (POCKETLORA_VULKAN=OFF); "
                                        "use --backend cpu");
#endif
}

}  // namespace pocketlora
