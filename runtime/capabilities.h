#pragma once
// What a physical device can do, queried once. Kernels and the profile table read this; nothing in the
// project assumes lavapipe's (or any GPU's) limits.
#include "runtime/vulkan_api.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pocketlora::vk {

struct MemoryHeapInfo {
  std::uint64_t size = 0;
  std::uint64_t budget = 0;  // VK_EXT_memory_budget when present, else size
  std::uint64_t usage = 0;
  bool device_local = false;
};

struct Capabilities {
  std::string name, driver_name, driver_info;
  std::uint32_t vendor_id = 0, device_id = 0, api_version = 0, driver_version = 0;
  VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
  std::array<std::uint8_t, VK_UUID_SIZE> pipeline_cache_uuid{};

  std::uint32_t subgroup_size = 1;
  VkSubgroupFeatureFlags subgroup_ops = 0;
  bool subgroup_in_compute = false;
  std::uint32_t max_shared_memory = 0;
  std::array<std::uint32_t, 3> max_workgroup_size{};
  std::uint32_t max_workgroup_invocations = 0;
  std::array<std::uint32_t, 3> max_workgroup_count{};
  std::uint64_t max_storage_buffer_range = 0;
  std::uint64_t min_storage_buffer_offset_alignment = 1;
  std::uint32_t max_push_constants = 0;
  std::uint32_t max_bound_descriptor_sets = 0;
  std::uint32_t max_storage_buffers_per_stage = 0;
  std::uint64_t max_memory_allocation_count = 0;
  std::uint64_t max_memory_allocation_size = 0;  // maintenance3 (core 1.1); 0: not reported

  bool fp16_arith = false, int8_arith = false;
  bool storage_16bit = false, storage_8bit = false;
  bool has_memory_budget = false;
  bool unified_memory = false;  // a DEVICE_LOCAL | HOST_VISIBLE | HOST_COHERENT type exists (phones, iGPUs)
  bool timestamps = false;
  float timestamp_period_ns = 1.0f;
  std::vector<MemoryHeapInfo> heaps;
  std::vector<std::string> extensions;

  bool has_extension(const char* name) const;
  bool subgroup_arithmetic() const {
    return subgroup_in_compute && (subgroup_ops & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
  }
  std::uint64_t device_local_budget() const;
  nlohmann::json to_json() const;
};

Capabilities query_capabilities(VkPhysicalDevice pd, std::uint32_t instance_api);
// The memory heaps as they are now: VK_EXT_memory_budget's budget and usage move as this process and others
// allocate (a phone's budget shrinks while other apps run), so a plan made later asks again.
std::vector<MemoryHeapInfo> query_memory_heaps(VkPhysicalDevice pd, bool has_memory_budget);
const char* device_type_name(VkPhysicalDeviceType t);

}  // namespace pocketlora::vk
