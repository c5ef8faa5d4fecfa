#pragma once
// Kernels whose operands are each stored f32 or f16 (shaders/common/storage.glsl): which of the kernel's two
// SPIR-V variants to build and the specialization constants that say, operand by operand, which view to use.
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include "host/ops/device_tensor.h"
#include "runtime/shader_registry.h"

namespace pocketlora::ops {

struct StorageVariant {
  vk::ShaderId shader;
  std::vector<std::uint32_t> spec;  // `leading` (workgroup size, ...), then 1 (f16) or 0 (f32) per operand
};

// The f32 variant when every operand is f32, else the f16 one, which needs storageBuffer16BitAccess
// (DeviceLimitError naming the op and the device otherwise). The kernel declares the operands' constants right
// after the leading ones, in the order given here. An operand neither f32 nor f16: ShapeError naming the op, the
// operand, its shape and dtype.
StorageVariant storage_variant(const vk::Device& dev, const char* op, vk::ShaderId f32, vk::ShaderId f16,
                               std::vector<std::uint32_t> leading,
                               std::initializer_list<std::pair<const char*, const DeviceTensor*>> operands);

}  // namespace pocketlora::ops
