#include "host/ops/matmul.h"

#include "host/core/error.h"
#include "host/ops/loop_limit.h"
#include "runtime/error.h"
#include "shaders/common/matmul_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

void matmul(vk::Sequence& seq, const DeviceTensor& a, const DeviceTensor& b, const DeviceTensor& c,
            const MatmulOptions& opt) {
  const auto [M, N, K] = check_matmul_shapes("ops::matmul", a.shape, b.shape, c.shape, opt);
  if (a.dtype != b.dtype || a.dtype != c.dtype || (a.dtype != DType::F32 && a.dtype != DType::F16))
    throw ShapeError("ops::matmul: dtypes " + describe("A", a) + ", " + describe("B", b) + ", " + describe("C", c) +
                     " — expected all f32 or all f16");
  vk::Device& dev = seq.device();
  if (a.dtype == DType::F16 && !dev.caps().storage_16bit)
    throw DeviceLimitError("ops::matmul: f16 storage needs storageBuffer16BitAccess, which '" + dev.caps().name +
                      "' lacks");
  const auto& prof = dev.profile();
  const std::uint32_t wx = prof.u32("matmul.wg_x"), wy = prof.u32("matmul.wg_y");
  const std::uint32_t tm = prof.u32("matmul.tm"), tn = prof.u32("matmul.tn");
  const auto& pipe = dev.pipeline({a.dtype == DType::F16 ? shaders::nn_matmul_f16 : shaders::nn_matmul_f32,
                                   {wx, wy, tm, tn}, 3, sizeof(shader::MatmulPush)});
  if (M == 0 || N == 0) return;
  check_loop_checks(dev, "ops::matmul", "the reduction over K = " + std::to_string(K),
                    loop_checks(static_cast<std::uint64_t>(K)));
  const std::uint32_t flags = (opt.accumulate ? MATMUL_ACCUMULATE : 0u) | (opt.trans_a ? MATMUL_TRANS_A : 0u) |
                              (opt.trans_b ? MATMUL_TRANS_B : 0u);
  const auto u = [](std::int64_t v) { return static_cast<std::uint32_t>(v); };
  shader::MatmulPush push{u(M), u(N), u(K), u(a.dim(1)), u(b.dim(1)), u(N), flags, opt.alpha};
  const std::uint32_t gx = (u(N) + wx * tn - 1) / (wx * tn), gy = (u(M) + wy * tm - 1) / (wy * tm);
  seq.dispatch(pipe, {vk::reads(a.buf), vk::reads(b.buf), vk::writes(c.buf)}, push, {gx, gy, 1}, "matmul");
}

}  // namespace pocketlora::ops
