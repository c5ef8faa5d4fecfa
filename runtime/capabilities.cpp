#include "runtime/capabilities.h"

#include <algorithm>
#include <cstring>

namespace pocketlora::vk {

const char* device_type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
  }
}

bool Capabilities::has_extension(const char* ext) const {
  return std::find(extensions.begin(), extensions.end(), ext) != extensions.end();
}

std::uint64_t Capabilities::device_local_budget() const {
  std::uint64_t best = 0;
  for (auto& h : heaps)
    if (h.device_local) best = std::max(best, h.budget);
  return best;
}

std::vector<MemoryHeapInfo> query_memory_heaps(VkPhysicalDevice pd, bool has_memory_budget) {
  VkPhysicalDeviceMemoryBudgetPropertiesEXT budget{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
  VkPhysicalDeviceMemoryProperties2 mem{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
  if (has_memory_budget) mem.pNext = &budget;
  vkGetPhysicalDeviceMemoryProperties2(pd, &mem);
  const auto& mp = mem.memoryProperties;
  std::vector<MemoryHeapInfo> heaps;
  for (uint32_t i = 0; i < mp.memoryHeapCount; ++i) {
    MemoryHeapInfo h;
    h.size = mp.memoryHeaps[i].size;
    h.device_local = mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
    h.budget = has_memory_budget && budget.heapBudget[i] ? budget.heapBudget[i] : h.size;
    h.usage = has_memory_budget ? budget.heapUsage[i] : 0;
    heaps.push_back(h);
  }
  return heaps;
}

Capabilities query_capabilities(VkPhysicalDevice pd, std::uint32_t instance_api) {
  Capabilities c;
  uint32_t n = 0;
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> exts(n);
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, exts.data());
  for (auto& e : exts) c.extensions.emplace_back(e.extensionName);

  VkPhysicalDeviceProperties base{};
  vkGetPhysicalDeviceProperties(pd, &base);
  const std::uint32_t api = std::min(base.apiVersion, instance_api);

  VkPhysicalDeviceSubgroupProperties sub{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceDriverProperties drv{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceMaintenance3Properties m3{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  props.pNext = &sub;
  void** props_tail = &sub.pNext;
  const bool has_driver_props = api >= VK_API_VERSION_1_2 || c.has_extension(VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
  if (has_driver_props) {
    *props_tail = &drv;
    props_tail = &drv.pNext;
  }
  if (api >= VK_API_VERSION_1_1 || c.has_extension(VK_KHR_MAINTENANCE_3_EXTENSION_NAME)) *props_tail = &m3;
  vkGetPhysicalDeviceProperties2(pd, &props);
  const auto& p = props.properties;
  const auto& lim = p.limits;

  c.name = p.deviceName;
  c.vendor_id = p.vendorID;
  c.device_id = p.deviceID;
  c.api_version = p.apiVersion;
  c.driver_version = p.driverVersion;
  c.type = p.deviceType;
  std::memcpy(c.pipeline_cache_uuid.data(), p.pipelineCacheUUID, VK_UUID_SIZE);
  if (has_driver_props) {
    c.driver_name = drv.driverName;
    c.driver_info = drv.driverInfo;
  }
  c.subgroup_size = sub.subgroupSize;
  c.subgroup_ops = sub.supportedOperations;
  c.subgroup_in_compute = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) != 0;
  c.max_shared_memory = lim.maxComputeSharedMemorySize;
  for (int i = 0; i < 3; ++i) {
    c.max_workgroup_size[i] = lim.maxComputeWorkGroupSize[i];
    c.max_workgroup_count[i] = lim.maxComputeWorkGroupCount[i];
  }
  c.max_workgroup_invocations = lim.maxComputeWorkGroupInvocations;
  c.max_storage_buffer_range = lim.maxStorageBufferRange;
  c.min_storage_buffer_offset_alignment = lim.minStorageBufferOffsetAlignment;
  c.max_push_constants = lim.maxPushConstantsSize;
  c.max_bound_descriptor_sets = lim.maxBoundDescriptorSets;
  c.max_storage_buffers_per_stage = lim.maxPerStageDescriptorStorageBuffers;
  c.max_memory_allocation_count = lim.maxMemoryAllocationCount;
  c.max_memory_allocation_size = m3.maxMemoryAllocationSize;
  c.timestamp_period_ns = lim.timestampPeriod;

  // Feature bits: 16-bit storage is core 1.1; float16/int8 arithmetic and 8-bit storage are extensions.
  VkPhysicalDevice16BitStorageFeatures s16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
  VkPhysicalDeviceShaderFloat16Int8Features f16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
  VkPhysicalDevice8BitStorageFeatures s8{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES};
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  feats.pNext = &s16;
  void** tail = &s16.pNext;
  const bool core12 = api >= VK_API_VERSION_1_2;
  if (core12 || c.has_extension(VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME)) {
    *tail = &f16;
    tail = &f16.pNext;
  }
  if (core12 || c.has_extension(VK_KHR_8BIT_STORAGE_EXTENSION_NAME)) {
    *tail = &s8;
    tail = &s8.pNext;
  }
  vkGetPhysicalDeviceFeatures2(pd, &feats);
  c.storage_16bit = s16.storageBuffer16BitAccess;
  c.fp16_arith = f16.shaderFloat16;
  c.int8_arith = f16.shaderInt8;
  c.storage_8bit = s8.storageBuffer8BitAccess;

  uint32_t qn = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &qn, nullptr);
  std::vector<VkQueueFamilyProperties> qf(qn);
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &qn, qf.data());
  for (auto& q : qf)
    if ((q.queueFlags & VK_QUEUE_COMPUTE_BIT) && q.timestampValidBits > 0) c.timestamps = true;

  c.has_memory_budget = c.has_extension(VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
  c.heaps = query_memory_heaps(pd, c.has_memory_budget);
  VkPhysicalDeviceMemoryProperties mp;
  vkGetPhysicalDeviceMemoryProperties(pd, &mp);
  const VkMemoryPropertyFlags uma = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                    VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  for (uint32_t i = 0; i < mp.memoryTypeCount; ++i)
    if ((mp.memoryTypes[i].propertyFlags & uma) == uma) c.unified_memory = true;
  return c;
}

nlohmann::json Capabilities::to_json() const {
  char vendor[16], device[16];
  std::snprintf(vendor, sizeof vendor, "0x%04x", vendor_id);
  std::snprintf(device, sizeof device, "0x%04x", device_id);
  nlohmann::json heaps_json = nlohmann::json::array();
  for (auto& h : heaps)
    heaps_json.push_back({{"size", h.size}, {"budget", h.budget}, {"usage", h.usage}, {"device_local", h.device_local}});
  nlohmann::json ops = nlohmann::json::array();
  const std::pair<VkSubgroupFeatureFlagBits, const char*> names[] = {
      {VK_SUBGROUP_FEATURE_BASIC_BIT, "basic"},         {VK_SUBGROUP_FEATURE_VOTE_BIT, "vote"},
      {VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic"}, {VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot"},
      {VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle"},     {VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffle_relative"},
      {VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered"}, {VK_SUBGROUP_FEATURE_QUAD_BIT, "quad"}};
  for (auto& [bit, nm] : names)
    if (subgroup_ops & bit) ops.push_back(nm);
  return {
      {"name", name},
      {"type", device_type_name(type)},
      {"vendor_id", vendor},
      {"device_id", device},
      {"api_version", std::to_string(VK_API_VERSION_MAJOR(api_version)) + "." +
                          std::to_string(VK_API_VERSION_MINOR(api_version)) + "." +
                          std::to_string(VK_API_VERSION_PATCH(api_version))},
      {"driver_name", driver_name},
      {"driver_info", driver_info},
      {"subgroup_size", subgroup_size},
      {"subgroup_ops", ops},
      {"subgroup_in_compute", subgroup_in_compute},
      {"max_shared_memory", max_shared_memory},
      {"max_workgroup_size", max_workgroup_size},
      {"max_workgroup_invocations", max_workgroup_invocations},
      {"max_workgroup_count", max_workgroup_count},
      {"max_storage_buffer_range", max_storage_buffer_range},
      {"max_memory_allocation_size", max_memory_allocation_size},
      {"min_storage_buffer_offset_alignment", min_storage_buffer_offset_alignment},
      {"max_push_constants", max_push_constants},
      {"fp16_arith", fp16_arith},
      {"int8_arith", int8_arith},
      {"storage_16bit", storage_16bit},
      {"storage_8bit", storage_8bit},
      {"unified_memory", unified_memory},
      {"memory_budget_ext", has_memory_budget},
      {"timestamps", timestamps},
      {"timestamp_period_ns", timestamp_period_ns},
      {"heaps", heaps_json},
  };
}

}  // namespace pocketlora::vk
