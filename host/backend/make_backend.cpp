#include "host/backend/backend.h"
#include "host/core/error.h"
#include "host/ref/cpu_backend.h"
#if POCKETLORA_HAS_VULKAN
#include "host/ops/vulkan_backend.h"
#endif

namespace pocketlora {

std::unique_ptr<Backend> make_backend(BackendKind kind) {
  if (kind == BackendKind::Cpu) return std::make_unique<ref::CpuBackend>();
#if POCKETLORA_HAS_VULKAN
  return std::make_unique<ops::VulkanBackend>(std::make_unique<vk::Device>());
#else
  throw CodedError<ErrorCode::NoDevice>("this build of PocketLoRA has no Vulkan backend (POCKETLORA_VULKAN=OFF); "
                                        "use --backend cpu");
#endif
}

}  // namespace pocketlora
