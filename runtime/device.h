#pragma once
// One VkDevice with one compute queue: device selection, capabilities, vendor profile, pipelines (+ on-disk
// pipeline cache), memory budget accounting and blocking upload/download helpers.
#include "runtime/vulkan_api.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/capabilities.h"
#include "runtime/device_profile.h"
#include "runtime/instance.h"
#include "runtime/memory.h"
#include "runtime/pipeline.h"

namespace pocketlora::vk {

struct DeviceOptions {
  std::optional<int> index;                   // default: POCKETLORA_DEVICE, else best by type
  std::optional<bool> validation;             // default: POCKETLORA_VALIDATION
  std::optional<std::filesystem::path> pipeline_cache;  // default: POCKETLORA_PIPELINE_CACHE, else none
  std::filesystem::path profile_override;     // default: POCKETLORA_PROFILE
  VkDeviceSize block_size = 0;                // 0: min(64 MiB, maxStorageBufferRange)
};

struct PhysicalDeviceInfo {
  int index;
  Capabilities caps;
};

// Lists every physical device (index, capabilities).
std::vector<PhysicalDeviceInfo> list_devices(const Instance& inst);
// Index chosen by preference discrete > integrated > virtual > cpu > other (first of the best type), or the
// requested one; an invalid index throws NoDevice listing the devices.
int choose_device(const std::vector<PhysicalDeviceInfo>& devices, std::optional<int> requested);

class Device {
 public:
  explicit Device(DeviceOptions opts = {});
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const Instance& instance() const { return *instance_; }
  const Capabilities& caps() const { return caps_; }
  const DeviceProfile& profile() const { return profile_; }
  int index() const { return index_; }
  VkDevice handle() const { return device_; }
  VkPhysicalDevice physical() const { return physical_; }
  VkQueue queue() const { return queue_; }
  std::uint32_t queue_family() const { return queue_family_; }
  VkCommandPool command_pool() const { return command_pool_; }
  VkDeviceSize block_size() const { return block_size_; }
  VkDeviceSize alignment() const { return alignment_; }

  // Cached by (shader, spec constants, bindings, push size).
  const Pipeline& pipeline(const PipelineKey& key);
  void save_pipeline_cache() const;

  // Memory type for a kind; budget accounting used by MemoryBlock.
  std::uint32_t memory_type(MemoryKind kind, std::uint32_t type_bits) const;
  VkMemoryPropertyFlags memory_type_flags(std::uint32_t type) const;
  std::uint32_t heap_of(std::uint32_t type) const;
  void reserve_heap(std::uint32_t heap, VkDeviceSize size, const std::string& what);
  void release_heap(std::uint32_t heap, VkDeviceSize size);
  VkDeviceSize allocated_bytes() const;
  VkDeviceSize allocated_bytes_locked() const;
  VkDeviceSize peak_allocated_bytes() const { return peak_allocated_; }

  // Blocking copies between host memory and a slice (direct memcpy on host-visible memory, else staged).
  void upload(const BufferSlice& dst, const void* src, VkDeviceSize size);
  void download(const BufferSlice& src, void* dst, VkDeviceSize size);

  // Submits a recorded command buffer and waits; throws DeviceLost / VulkanError on failure or timeout.
  void submit_and_wait(VkCommandBuffer cmd, const char* what);
  // Blocks until the device has finished all work, e.g. a submit that timed out, before its memory is freed.
  void wait_idle();

 private:
  void create_device();
  void load_pipeline_cache();
  void copy_via_staging(const BufferSlice& dev, void* host, VkDeviceSize size, bool to_device);

  std::unique_ptr<Instance> instance_;
  DeviceOptions opts_;
  int index_ = -1;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  Capabilities caps_;
  DeviceProfile profile_;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  std::uint32_t queue_family_ = 0;
  VkCommandPool command_pool_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  VkPipelineCache pipeline_cache_ = VK_NULL_HANDLE;
  std::filesystem::path pipeline_cache_path_;
  VkPhysicalDeviceMemoryProperties mem_props_{};
  VkDeviceSize block_size_ = 0, alignment_ = 16;
  std::vector<VkDeviceSize> heap_allocated_;
  VkDeviceSize peak_allocated_ = 0;
  std::map<PipelineKey, std::unique_ptr<Pipeline>> pipelines_;
  std::unique_ptr<Arena> staging_;
  mutable std::mutex mu_;
};

}  // namespace pocketlora::vk
