#include "runtime/error.h"

namespace pocketlora::vk {

const char* result_name(VkResult r) {
  switch (r) {
#define PL_CASE(x) case x: return #x;
    PL_CASE(VK_SUCCESS) PL_CASE(VK_NOT_READY) PL_CASE(VK_TIMEOUT) PL_CASE(VK_EVENT_SET) PL_CASE(VK_EVENT_RESET)
    PL_CASE(VK_INCOMPLETE) PL_CASE(VK_ERROR_OUT_OF_HOST_MEMORY) PL_CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    PL_CASE(VK_ERROR_INITIALIZATION_FAILED) PL_CASE(VK_ERROR_DEVICE_LOST) PL_CASE(VK_ERROR_MEMORY_MAP_FAILED)
    PL_CASE(VK_ERROR_LAYER_NOT_PRESENT) PL_CASE(VK_ERROR_EXTENSION_NOT_PRESENT) PL_CASE(VK_ERROR_FEATURE_NOT_PRESENT)
    PL_CASE(VK_ERROR_INCOMPATIBLE_DRIVER) PL_CASE(VK_ERROR_TOO_MANY_OBJECTS) PL_CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
    PL_CASE(VK_ERROR_FRAGMENTED_POOL) PL_CASE(VK_ERROR_UNKNOWN) PL_CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
    PL_CASE(VK_ERROR_INVALID_EXTERNAL_HANDLE) PL_CASE(VK_ERROR_FRAGMENTATION)
    PL_CASE(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
#undef PL_CASE
    default: return "VK_RESULT_UNKNOWN";
  }
}

VulkanError::VulkanError(VkResult r, const std::string& what) : VulkanError(ErrorCode::Backend, r, what) {}

VulkanError::VulkanError(ErrorCode code, VkResult r, const std::string& what)
    : Error(code, what + " failed: " + result_name(r) + " (" + std::to_string(static_cast<int>(r)) + ")"),
      result_(r) {}

DeviceLost::DeviceLost(const std::string& what) : VulkanError(ErrorCode::DeviceLost, VK_ERROR_DEVICE_LOST, what) {}

OutOfMemory::OutOfMemory(VkResult r, const std::string& what, std::uint64_t requested, std::uint64_t budget)
    : VulkanError(ErrorCode::OutOfMemory, r, what + " (requested " + std::to_string(requested) + " bytes, heap budget " +
                         std::to_string(budget) + " bytes)"),
      requested_(requested),
      budget_(budget) {}

void throw_result(VkResult r, const std::string& what) {
  if (r == VK_ERROR_DEVICE_LOST) throw DeviceLost(what);
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) throw OutOfMemory(r, what, 0, 0);
  throw VulkanError(r, what);
}

}  // namespace pocketlora::vk
