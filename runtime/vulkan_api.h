#pragma once
// The one way runtime/ sees the Vulkan API: the Khronos headers without prototypes, plus one function pointer per
// command we call, filled at run time by runtime/vulkan_loader.cpp (volk's approach, written here because Debian 12
// ships no volk package). Nothing links libvulkan: Android forbids a link-time dependency on it (the loader may be
// absent or too old), and a desktop without a Vulkan loader must still run the CPU backend.
//
// The pointers live in namespace pocketlora::vk under the API's own names, so code in that namespace calls
// vkCreateBuffer(...) exactly as before. A namespace-scope variable has a mangled symbol, so it can never interpose
// on (or be interposed by) the loader's exported vk* functions.
#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES  // normally set by the build (CMakeLists.txt); a TU that forgets would see prototypes
#endif
#include <vulkan/vulkan.h>

// Commands resolved with vkGetInstanceProcAddr(NULL, ...): usable before an instance exists.
#define PL_VK_GLOBAL_COMMANDS(X)             \
  X(vkCreateInstance)                        \
  X(vkEnumerateInstanceExtensionProperties)  \
  X(vkEnumerateInstanceLayerProperties)

// Optional global command: absent from a Vulkan 1.0 loader (the instance then refuses it by name).
#define PL_VK_OPTIONAL_GLOBAL_COMMANDS(X) X(vkEnumerateInstanceVersion)

// Instance- and device-level commands (core 1.0/1.1), resolved with vkGetInstanceProcAddr(instance, ...).
#define PL_VK_INSTANCE_COMMANDS(X)              \
  X(vkDestroyInstance)                          \
  X(vkEnumeratePhysicalDevices)                 \
  X(vkEnumerateDeviceExtensionProperties)       \
  X(vkGetPhysicalDeviceProperties)              \
  X(vkGetPhysicalDeviceProperties2)             \
  X(vkGetPhysicalDeviceFeatures)                \
  X(vkGetPhysicalDeviceFeatures2)               \
  X(vkGetPhysicalDeviceMemoryProperties)        \
  X(vkGetPhysicalDeviceMemoryProperties2)       \
  X(vkGetPhysicalDeviceQueueFamilyProperties)   \
  X(vkCreateDevice)                             \
  X(vkDestroyDevice)                            \
  X(vkGetDeviceQueue)                           \
  X(vkDeviceWaitIdle)                           \
  X(vkQueueSubmit)                              \
  X(vkCreateFence)                              \
  X(vkDestroyFence)                             \
  X(vkResetFences)                              \
  X(vkWaitForFences)                            \
  X(vkCreateCommandPool)                        \
  X(vkDestroyCommandPool)                       \
  X(vkAllocateCommandBuffers)                   \
  X(vkFreeCommandBuffers)                       \
  X(vkBeginCommandBuffer)                       \
  X(vkEndCommandBuffer)                         \
  X(vkResetCommandBuffer)                       \
  X(vkCreateBuffer)                             \
  X(vkDestroyBuffer)                            \
  X(vkGetBufferMemoryRequirements)              \
  X(vkAllocateMemory)                           \
  X(vkFreeMemory)                               \
  X(vkBindBufferMemory)                         \
  X(vkMapMemory)                                \
  X(vkUnmapMemory)                              \
  X(vkCreateShaderModule)                       \
  X(vkDestroyShaderModule)                      \
  X(vkCreatePipelineCache)                      \
  X(vkDestroyPipelineCache)                     \
  X(vkGetPipelineCacheData)                     \
  X(vkCreateComputePipelines)                   \
  X(vkDestroyPipeline)                          \
  X(vkCreatePipelineLayout)                     \
  X(vkDestroyPipelineLayout)                    \
  X(vkCreateDescriptorSetLayout)                \
  X(vkDestroyDescriptorSetLayout)               \
  X(vkCreateDescriptorPool)                     \
  X(vkDestroyDescriptorPool)                    \
  X(vkAllocateDescriptorSets)                   \
  X(vkUpdateDescriptorSets)                     \
  X(vkCreateQueryPool)                          \
  X(vkDestroyQueryPool)                         \
  X(vkGetQueryPoolResults)                      \
  X(vkCmdBindPipeline)                          \
  X(vkCmdBindDescriptorSets)                    \
  X(vkCmdPushConstants)                         \
  X(vkCmdDispatch)                              \
  X(vkCmdCopyBuffer)                            \
  X(vkCmdFillBuffer)                            \
  X(vkCmdPipelineBarrier)                       \
  X(vkCmdResetQueryPool)                        \
  X(vkCmdWriteTimestamp)

namespace pocketlora::vk {

#define PL_VK_DECLARE(name) extern PFN_##name name;
extern PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
PL_VK_GLOBAL_COMMANDS(PL_VK_DECLARE)
PL_VK_OPTIONAL_GLOBAL_COMMANDS(PL_VK_DECLARE)
PL_VK_INSTANCE_COMMANDS(PL_VK_DECLARE)
#undef PL_VK_DECLARE

}  // namespace pocketlora::vk
