#pragma once
// A compute pipeline built from embedded SPIR-V: N storage-buffer bindings (set 0, bindings 0..N-1), one
// push-constant range, and specialization constants 0..K-1 (by convention 0/1/2 are the workgroup size when
// the shader declares local_size_*_id).
#include "runtime/vulkan_api.h"

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/shader_registry.h"

namespace pocketlora::vk {

struct PipelineKey {
  ShaderId shader;
  std::vector<std::uint32_t> spec;  // specialization constants, ids 0..spec.size()-1, as 32-bit values
  std::uint32_t num_buffers = 0;
  std::uint32_t push_size = 0;
  bool operator<(const PipelineKey& o) const {
    return std::tie(shader, spec, num_buffers, push_size) < std::tie(o.shader, o.spec, o.num_buffers, o.push_size);
  }
};

struct Pipeline {
  PipelineKey key;
  VkPipeline pipeline = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
};

}  // namespace pocketlora::vk
