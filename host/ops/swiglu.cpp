#include "host/ops/swiglu.h"

#include "host/core/error.h"
#include "host/ops/grid.h"
#include "host/ops/storage_variant.h"
#include "shaders/common/nn_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

void swiglu(vk::Sequence& seq, const DeviceTensor& g, const DeviceTensor& u, const DeviceTensor& h) {
  check_same_shapes("ops::swiglu", {{"g", &g.shape}, {"u", &u.shape}, {"h", &h.shape}});
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("elementwise.wg");
  const StorageVariant v = storage_variant(dev, "ops::swiglu", shaders::nn_swiglu, shaders::nn_swiglu_f16, {wg},
                                           {{"g", &g}, {"u", &u}, {"h", &h}});
  shader::ElementwisePush push{static_cast<std::uint32_t>(g.numel()), 1.0f, 0, 0};
  seq.dispatch(dev.pipeline({v.shader, v.spec, 3, sizeof(push)}),
               {vk::reads(g.buf), vk::reads(u.buf), vk::writes(h.buf)}, push,
               grid_1d(dev, static_cast<std::uint64_t>(g.numel()), wg), "swiglu");
}

void swiglu_backward(vk::Sequence& seq, const DeviceTensor& g, const DeviceTensor& u, const DeviceTensor& dh,
                     const DeviceTensor& dg, const DeviceTensor& du) {
  check_same_shapes("ops::swiglu_backward",
                    {{"g", &g.shape}, {"u", &u.shape}, {"dh", &dh.shape}, {"dg", &dg.shape}, {"du", &du.shape}});
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("elementwise.wg");
  const StorageVariant v =
      storage_variant(dev, "ops::swiglu_backward", shaders::nn_swiglu_backward, shaders::nn_swiglu_backward_f16, {wg},
                      {{"g", &g}, {"u", &u}, {"dh", &dh}, {"dg", &dg}, {"du", &du}});
  shader::ElementwisePush push{static_cast<std::uint32_t>(g.numel()), 1.0f, 0, 0};
  seq.dispatch(dev.pipeline({v.shader, v.spec, 5, sizeof(push)}),
               {vk::reads(g.buf), vk::reads(u.buf), vk::reads(dh.buf), vk::writes(dg.buf), vk::writes(du.buf)}, push,
               grid_1d(dev, static_cast<std::uint64_t>(g.numel()), wg), "swiglu_backward");
}

void add(vk::Sequence& seq, const DeviceTensor& a, const DeviceTensor& b, const DeviceTensor& y, float alpha) {
  check_same_shapes("ops::add", {{"a", &a.shape}, {"b", &b.shape}, {"y", &y.shape}});
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("elementwise.wg");
  // Spec constants in binding order (b, y, a), as nn/add.glsl declares them.
  const StorageVariant v =
      storage_variant(dev, "ops::add", shaders::nn_add, shaders::nn_add_f16, {wg}, {{"b", &b}, {"y", &y}, {"a", &a}});
  shader::ElementwisePush push{static_cast<std::uint32_t>(a.numel()), alpha, 0, 0};
  seq.dispatch(dev.pipeline({v.shader, v.spec, 3, sizeof(push)}),
               {vk::reads(b.buf), vk::writes(y.buf), vk::reads(a.buf)}, push,
               grid_1d(dev, static_cast<std::uint64_t>(a.numel()), wg), "add");
}

}  // namespace pocketlora::ops
