#include "host/ops/rmsnorm.h"

#include "host/core/error.h"
#include "host/ops/grid.h"
#include "host/ops/loop_limit.h"
#include "shaders/common/nn_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

void rmsnorm(vk::Sequence& seq, const DeviceTensor& x, const DeviceTensor& w, const DeviceTensor& y,
             const DeviceTensor& rstd, float eps) {
  const auto [rows, dim] = check_rmsnorm_shapes("ops::rmsnorm", x.shape, w.shape);
  if (y.shape != x.shape || rstd.numel() != rows)
    throw ShapeError("ops::rmsnorm: y " + shape_str(y.shape) + " / rstd " + shape_str(rstd.shape) +
                     " do not fit x " + shape_str(x.shape));
  require_f32("ops::rmsnorm", {{"x", &x}, {"w", &w}, {"y", &y}, {"rstd", &rstd}});
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("nn.wg");
  // One invocation per row walks the row twice (sum of squares, then scale).
  check_loop_checks(dev, "ops::rmsnorm", "the two loops over dim = " + std::to_string(dim),
                    2 * loop_checks(static_cast<std::uint64_t>(dim)));
  shader::RowsPush push{static_cast<std::uint32_t>(rows), static_cast<std::uint32_t>(dim), eps, 0};
  seq.dispatch(dev.pipeline({shaders::nn_rmsnorm, {wg}, 4, sizeof(push)}),
               {vk::reads(x.buf), vk::reads(w.buf), vk::writes(y.buf), vk::writes(rstd.buf)}, push,
               grid_1d(dev, static_cast<std::uint64_t>(rows), wg), "rmsnorm");
}

void rmsnorm_backward(vk::Sequence& seq, const DeviceTensor& x, const DeviceTensor& w, const DeviceTensor& rstd,
                      const DeviceTensor& dy, const DeviceTensor& dx, const DeviceTensor& dw, bool accumulate_dw) {
  const auto [rows, dim] = check_rmsnorm_shapes("ops::rmsnorm_backward", x.shape, w.shape);
  if (dy.shape != x.shape || dx.shape != x.shape || dw.shape != w.shape || rstd.numel() != rows)
    throw ShapeError("ops::rmsnorm_backward: dy " + shape_str(dy.shape) + ", dx " + shape_str(dx.shape) + ", dw " +
                     shape_str(dw.shape) + ", rstd " + shape_str(rstd.shape) + " do not fit x " + shape_str(x.shape));
  require_f32("ops::rmsnorm_backward", {{"x", &x}, {"w", &w}, {"rstd", &rstd}, {"dy", &dy}, {"dx", &dx}, {"dw", &dw}});
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("nn.wg");
  check_loop_checks(dev, "ops::rmsnorm_backward", "dx: the two loops over dim = " + std::to_string(dim),
                    2 * loop_checks(static_cast<std::uint64_t>(dim)));
  shader::RowsPush push{static_cast<std::uint32_t>(rows), static_cast<std::uint32_t>(dim), 0.0f,
                        accumulate_dw ? 1u : 0u};
  seq.dispatch(dev.pipeline({shaders::nn_rmsnorm_backward_dx, {wg}, 5, sizeof(push)}),
               {vk::reads(x.buf), vk::reads(w.buf), vk::reads(rstd.buf), vk::reads(dy.buf), vk::writes(dx.buf)}, push,
               grid_1d(dev, static_cast<std::uint64_t>(rows), wg), "rmsnorm_backward_dx");
  // dw sums over rows per column; past the device's loop limit it sums row ranges, one dispatch each, the later
  // ones accumulating into dw.
  const auto& dw_pipe = dev.pipeline({shaders::nn_rmsnorm_backward_dw, {wg}, 4, sizeof(push)});
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
