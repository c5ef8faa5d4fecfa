#include "host/ops/matmul.h"

#include "host/core/error.h"
#include "host/ops/loop_limit.h"
#include "runtime/error.h"
#include "shaders/common/matmul_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

namespace {
// One compiled variant per (A, B, C) storage triple, each f32 or f16 (shaders/nn/matmul_*.comp): the buffer
// element type is part of the SPIR-V, and a variant that declares no f16 buffer runs on devices without 16-bit
// storage. The arithmetic is the same f32 in every variant.
vk::ShaderId matmul_shader(DType a, DType b, DType c) {
  const bool ha = a == DType::F16, hb = b == DType::F16, hc = c == DType::F16;
  if (ha && hb && hc) return shaders::nn_matmul_f16;
  if (ha && hb) return shaders::nn_matmul_a16_b16;
  if (ha && hc) return shaders::nn_matmul_a16_c16;
  if (hb && hc) return shaders::nn_matmul_b16_c16;
  if (ha) return shaders::nn_matmul_a16;
  if (hb) return shaders::nn_matmul_b16;
  if (hc) return shaders::nn_matmul_c16;
  return shaders::nn_matmul_f32;
}
}  // namespace

void matmul(vk::Sequence& seq, const DeviceTensor& a, const DeviceTensor& b, const DeviceTensor& c,
            const MatmulOptions& opt) {
  const auto [M, N, K] = check_matmul_shapes("ops::matmul", a.shape, b.shape, c.shape, opt);
  const auto storable = [](DType d) { return d == DType::F32 || d == DType::F16; };
  if (!storable(a.dtype) || !storable(b.dtype) || !storable(c.dtype))
    throw ShapeError("ops::matmul: dtypes " + describe("A", a) + ", " + describe("B", b) + ", " + describe("C", c) +
                     " — expected each f32 or f16");
  vk::Device& dev = seq.device();
  const bool any_f16 = a.dtype == DType::F16 || b.dtype == DType::F16 || c.dtype == DType::F16;
  if (any_f16 && !dev.caps().storage_16bit)
    throw DeviceLimitError("ops::matmul: f16 storage (" + describe("A", a) + ", " + describe("B", b) + ", " +
                           describe("C", c) + ") needs storageBuffer16BitAccess, which '" + dev.caps().name +
                           "' lacks");
  const auto& prof = dev.profile();
  const std::uint32_t wx = prof.u32("matmul.wg_x"), wy = prof.u32("matmul.wg_y");
  const std::uint32_t tm = prof.u32("matmul.tm"), tn = prof.u32("matmul.tn");
  const auto& pipe = dev.pipeline({matmul_shader(a.dtype, b.dtype, c.dtype), {wx, wy, tm, tn}, 3,
                                   sizeof(shader::MatmulPush)});
  if (M == 0 || N == 0) return;
  check_loop_checks(dev, "ops::matmul", "the reduction over K = " + std::to_string(K),
                    loop_checks(static_cast<std::uint64_t>(K)));
  const std::uint32_t flags = (opt.accumulate ? MATMUL_ACCUMULATE : 0u) | (opt.trans_a ? MATMUL_TRANS_A : 0u) |
                              (opt.trans_b ? MATMUL_TRANS_B : 0u);
  const auto u = [](std::int64_t v) { return static_cast<std::uint32_t>(v); };
  shader::MatmulPush push{u(M), u(N), u(K), u(a.dim(1)), u(b.dim(1)), u(N), flags, opt.alpha, 0, 0};
  const std::uint32_t gx = (u(N) + wx * tn - 1) / (wx * tn), gy = (u(M) + wy * tm - 1) / (wy * tm);
  seq.dispatch(pipe, {vk::reads(a.buf), vk::reads(b.buf), vk::writes(c.buf)}, push, {gx, gy, 1}, "matmul");
}

}  // namespace pocketlora::ops
