#include "host/ops/rmsnorm.h"

#include "host/core/error.h"
#include "host/ops/grid.h"
#include "host/ops/loop_limit.h"
#include "host/ops/storage_variant.h"
#include "shaders/common/nn_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

void rmsnorm(vk::Sequence& seq, const DeviceTensor& x, const DeviceTensor& w, const DeviceTensor& y,
             const DeviceTensor& rstd, float eps) {
  const auto [rows, dim] = check_rmsnorm_shapes("ops::rmsnorm", x.shape, w.shape);
  if (y.shape != x.shape || rstd.numel() != rows)
    throw ShapeError("ops::rmsnorm: y " + shape_str(y.shape) + " / rstd " + shape_str(rstd.shape) +
                     " do not fit x " + shape_str(x.shape));
  require_f32("ops::rmsnorm", {{"rstd", &rstd}});
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("nn.wg");
  const StorageVariant v = storage_variant(dev, "ops::rmsnorm", shaders::nn_rmsnorm, shaders::nn_rmsnorm_f16, {wg},
                                           {{"x", &x}, {"w", &w}, {"y", &y}});
  // One invocation per row walks the row twice (sum of squares, then scale).
  check_loop_checks(dev, "ops::rmsnorm", "the two loops over dim = " + std::to_string(dim),
                    2 * loop_checks(static_cast<std::uint64_t>(dim)));
  shader::RowsPush push{static_cast<std::uint32_t>(rows), static_cast<std::uint32_t>(dim), eps, 0};
  seq.dispatch(dev.pipeline({v.shader, v.spec, 4, sizeof(push)}),
               {vk::reads(x.buf), vk::reads(w.buf), vk::writes(y.buf), vk::writes(rstd.buf)}, push,
               grid_1d(dev, static_cast<std::uint64_t>(rows), wg), "rmsnorm");
}

void rmsnorm_backward(vk::Sequence& seq, const DeviceTensor& x, const DeviceTensor& w, const DeviceTensor& rstd,
                      const DeviceTensor& dy, const DeviceTensor& dx, const DeviceTensor& dw, bool accumulate_dw) {
  const auto [rows, dim] = check_rmsnorm_shapes("ops::rmsnorm_backward", x.shape, w.shape);
  if (dy.shape != x.shape || dx.shape != x.shape || dw.shape != w.shape || rstd.numel() != rows)
    throw ShapeError("ops::rmsnorm_backward: dy " + shape_str(dy.shape) + ", dx " + shape_str(dx.shape) + ", dw " +
                     shape_str(dw.shape) + ", rstd " + shape_str(rstd.shape) + " do not fit x " + shape_str(x.shape));
  // rstd and dw stay f32: dw sums over every row of every micro-batch.
  require_f32("ops::rmsnorm_backward", {{"rstd", &rstd}, {"dw", &dw}});
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("nn.wg");
  const StorageVariant vdx =
      storage_variant(dev, "ops::rmsnorm_backward", shaders::nn_rmsnorm_backward_dx,
                      shaders::nn_rmsnorm_backward_dx_f16, {wg}, {{"x", &x}, {"w", &w}, {"dy", &dy}, {"dx", &dx}});
  const StorageVariant vdw = storage_variant(dev, "ops::rmsnorm_backward", shaders::nn_rmsnorm_backward_dw,
                                             shaders::nn_rmsnorm_backward_dw_f16, {wg}, {{"x", &x}, {"dy", &dy}});
  check_loop_checks(dev, "ops::rmsnorm_backward", "dx: the two loops over dim = " + std::to_string(dim),
                    2 * loop_checks(static_cast<std::uint64_t>(dim)));
  shader::RowsPush push{static_cast<std::uint32_t>(rows), static_cast<std::uint32_t>(dim), 0.0f,
                        accumulate_dw ? 1u : 0u};
  seq.dispatch(dev.pipeline({vdx.shader, vdx.spec, 5, sizeof(push)}),
               {vk::reads(x.buf), vk::reads(w.buf), vk::reads(rstd.buf), vk::reads(dy.buf), vk::writes(dx.buf)}, push,
               grid_1d(dev, static_cast<std::uint64_t>(rows), wg), "rmsnorm_backward_dx");
  // dw sums over rows per column; past the device's loop limit it sums row ranges, one dispatch each, the later
  // ones accumulating into dw.
  const auto& dw_pipe = dev.pipeline({vdw.shader, vdw.spec, 4, sizeof(push)});
  const auto ranges = spans(static_cast<std::uint64_t>(rows),
                            loop_span(dev, "ops::rmsnorm_backward", "dw: the loop over rows", 1, 1));
  for (const auto& [b, e] : ranges) {
    shader::RowsPush part = push;
    part.rows = static_cast<std::uint32_t>(e);
    part.row_begin = static_cast<std::uint32_t>(b);
    if (b > 0) part.flags |= 1u;
    seq.dispatch(dw_pipe, {vk::reads(x.buf), vk::reads(rstd.buf), vk::reads(dy.buf), vk::writes(dw.buf)}, part,
                 grid_1d(dev, static_cast<std::uint64_t>(dim), wg), "rmsnorm_backward_dw");
  }
}

}  // namespace pocketlora::ops
