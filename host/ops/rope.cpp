#include "host/ops/rope.h"

#include "host/core/error.h"
#include "host/ops/grid.h"
#include "host/ops/storage_variant.h"
#include "shaders/common/nn_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

void rope(vk::Sequence& seq, const DeviceTensor& x, const DeviceTensor& positions, const DeviceTensor& table,
          RopeLayout layout, bool inverse) {
  check_rope_shapes("ops::rope", x.shape, positions.shape, table.shape);
  if (table.dtype != DType::F32 || positions.dtype != DType::I32)
    throw ShapeError("ops::rope: " + describe("table", table) + ", " + describe("positions", positions) +
                     " — expected f32, i32");
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("elementwise.wg");
  const StorageVariant sv =
      storage_variant(dev, "ops::rope", shaders::nn_rope, shaders::nn_rope_f16, {wg}, {{"x", &x}});
  const auto u = [](std::int64_t v) { return static_cast<std::uint32_t>(v); };
  shader::RopePush push{u(x.dim(0)), u(x.dim(1)), u(x.dim(2)),
                        (layout == RopeLayout::Interleaved ? ROPE_INTERLEAVED : 0u) | (inverse ? ROPE_INVERSE : 0u),
                        u(table.dim(0)), 0, 0, 0};
  const std::uint64_t pairs = static_cast<std::uint64_t>(x.numel() / 2);
  seq.dispatch(dev.pipeline({sv.shader, sv.spec, 3, sizeof(push)}),
               {vk::writes(x.buf), vk::reads(positions.buf), vk::reads(table.buf)}, push, grid_1d(dev, pairs, wg),
               inverse ? "rope_backward" : "rope");
}

}  // namespace pocketlora::ops
