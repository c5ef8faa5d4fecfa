#include "host/ops/matmul.h"

#include "host/util/error.h"
#include "runtime/error.h"
#include "shaders/common/matmul_push.h"

namespace pocketlora::ops {

void matmul(vk::Sequence& seq, const DeviceTensor& a, const DeviceTensor& b, const DeviceTensor& c,
            const MatmulOptions& opt) {
  check_matmul_shapes("ops::matmul", a.shape, b.shape, c.shape);
  if (a.dtype != b.dtype || a.dtype != c.dtype || (a.dtype != DType::F32 && a.dtype != DType::F16))
    throw ShapeError("ops::matmul: dtypes " + describe("A", a) + ", " + describe("B", b) + ", " + describe("C", c) +
                     " — expected all f32 or all f16");
  vk::Device& dev = seq.device();
  if (a.dtype == DType::F16 && !dev.caps().storage_16bit)
    throw vk::OpError("ops::matmul: f16 storage needs storageBuffer16BitAccess, which '" + dev.caps().name +
                      "' lacks");
  const auto& prof = dev.profile();
  const std::uint32_t wx = prof.u32("matmul.wg_x"), wy = prof.u32("matmul.wg_y");
  const std::uint32_t tm = prof.u32("matmul.tm"), tn = prof.u32("matmul.tn");
  const auto& pipe = dev.pipeline({a.dtype == DType::F16 ? "nn/matmul_f16" : "nn/matmul_f32",
                                   {wx, wy, tm, tn}, 3, sizeof(shader::MatmulPush)});
  const auto M = static_cast<std::uint32_t>(a.dim(0)), K = static_cast<std::uint32_t>(a.dim(1));
  const auto N = static_cast<std::uint32_t>(b.dim(0));
  if (M == 0 || N == 0) return;
  shader::MatmulPush push{M, N, K, K, K, N, opt.accumulate ? 1u : 0u, opt.alpha};
  const std::uint32_t gx = (N + wx * tn - 1) / (wx * tn), gy = (M + wy * tm - 1) / (wy * tm);
  seq.dispatch(pipe, {vk::reads(a.buf), vk::reads(b.buf), vk::writes(c.buf)}, push, {gx, gy, 1}, "matmul");
}

}  // namespace pocketlora::ops
