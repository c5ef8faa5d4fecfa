#include "host/ops/matmul.h"

#include <array>

#include "host/core/error.h"
#include "host/ops/loop_limit.h"
#include "runtime/error.h"
#include "shaders/common/lora_push.h"
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

// Dtype and device checks shared by both forms; returns the pipeline for the (A, B, C) storage triple.
const vk::Pipeline& matmul_pipeline(vk::Device& dev, DType a, DType b, DType c, const std::string& operands) {
  const auto storable = [](DType d) { return d == DType::F32 || d == DType::F16; };
  if (!storable(a) || !storable(b) || !storable(c))
    throw ShapeError("ops::matmul: dtypes " + operands + " — expected each f32 or f16");
  const bool any_f16 = a == DType::F16 || b == DType::F16 || c == DType::F16;
  if (any_f16 && !dev.caps().storage_16bit)
    throw DeviceLimitError("ops::matmul: f16 storage (" + operands + ") needs storageBuffer16BitAccess, which '" +
                           dev.caps().name + "' lacks");
  const auto& prof = dev.profile();
  return dev.pipeline({matmul_shader(a, b, c),
                       {prof.u32("matmul.wg_x"), prof.u32("matmul.wg_y"), prof.u32("matmul.tm"), prof.u32("matmul.tn")},
                       3,
                       sizeof(shader::MatmulPush)});
}

// One dispatch of C[M,N] block = alpha * op(A) * op(B)^T (+C) with the strides and offsets in `push`.
void dispatch(vk::Sequence& seq, const vk::Pipeline& pipe, const vk::BufferSlice& a, const vk::BufferSlice& b,
              const vk::BufferSlice& c, const shader::MatmulPush& push) {
  if (push.M == 0 || push.N == 0) return;
  vk::Device& dev = seq.device();
  check_loop_checks(dev, "ops::matmul", "the reduction over K = " + std::to_string(push.K),
                    loop_checks(static_cast<std::uint64_t>(push.K)));
  const auto& prof = dev.profile();
  const std::uint32_t wx = prof.u32("matmul.wg_x"), wy = prof.u32("matmul.wg_y");
  const std::uint32_t tm = prof.u32("matmul.tm"), tn = prof.u32("matmul.tn");
  const std::uint32_t gx = (push.N + wx * tn - 1) / (wx * tn), gy = (push.M + wy * tm - 1) / (wy * tm);
  seq.dispatch(pipe, {vk::reads(a), vk::reads(b), vk::writes(c)}, push, {gx, gy, 1}, "matmul");
}

// T terms per lane in the LORA_T_LANES variant (T_SLOTS in shaders/nn/matmul_gemv.glsl).
constexpr std::uint32_t kLoraTSlots = 4;

// One LoRA adapter's product fused into the few-row path: LA [r, K], LB [N, r] f32 (WITH_LORA variants).
struct GemvLora {
  const vk::BufferSlice* la = nullptr;
  const vk::BufferSlice* lb = nullptr;
  std::uint32_t r = 0;
  float scale = 0.0f;
};

// The few-row path (shaders/nn/matmul_gemv.glsl): C = alpha * A * B^T (+C) (+ lora.scale * (A LA^T) LB^T) with A, C
// f32, B f32 or f16, neither transposed and M <= the profile's matmul.gemv_max_m (at most 4) — the decoder's
// one-row linears and output head. Returns false where the tiled kernel (and a separate LoRA pass) must run instead.
bool gemv_dispatch(vk::Sequence& seq, DType a_dtype, DType b_dtype, DType c_dtype, const vk::BufferSlice& a,
                   const vk::BufferSlice& b, const vk::BufferSlice& c, const shader::MatmulPush& push,
                   const GemvLora& lora = {}) {
  vk::Device& dev = seq.device();
  const auto& prof = dev.profile();
  if (push.M == 0 || push.M > 4 || push.M > prof.param("matmul.gemv_max_m")) return false;
  if ((push.flags & (MATMUL_TRANS_A | MATMUL_TRANS_B)) != 0u) return false;
  if (a_dtype != DType::F32 || c_dtype != DType::F32 || (b_dtype != DType::F32 && b_dtype != DType::F16)) return false;
  const bool with_lora = lora.la != nullptr;
  if (with_lora && (!prof.flag("matmul.gemv_lora") || push.M * lora.r > LORA_ROWS_MAX_MR || lora.r == 0)) return false;
  if (push.N == 0) return true;
  const bool sub = prof.flag("matmul.gemv_subgroup") && dev.caps().subgroup_arithmetic() &&
                   prof.u32("matmul.gemv_wg") % dev.caps().subgroup_size == 0;
  const std::uint32_t lanes = sub ? dev.caps().subgroup_size : 1u;
  // The LoRA variant recomputes T = A LA^T per workgroup; more columns per workgroup (a subgroup loops over
  // several) amortise it where the profile asks (matmul.gemv_lora_cols; 0 = as the plain GEMV).
  const std::uint32_t lora_cols = with_lora && sub ? prof.u32("matmul.gemv_lora_cols") : 0u;
  // T in registers (matmul.gemv_lora_t_lanes): one subgroup per workgroup, vec4 views of A and LA, so K, lda, the
  // row offset and both bindings must be 16-byte aligned, and r must fit the lanes' T_SLOTS (4) terms each.
  const bool t_lanes = lora_cols > 0 && prof.flag("matmul.gemv_lora_t_lanes") && lora.r <= kLoraTSlots * lanes &&
                       push.K % 4 == 0 && push.lda % 4 == 0 && push.a_offset % 4 == 0 && a.offset % 16 == 0 &&
                       lora.la->offset % 16 == 0;
  // The plain GEMV's columns per workgroup (matmul.gemv_cols, 0 = one per subgroup of gemv_wg); where set, its
  // workgroup is one subgroup looping over them, as the T-in-registers variant's is (llvmpipe runs a workgroup's
  // subgroups one after another on one thread, so more of them share nothing but the per-workgroup cost).
  const std::uint32_t plain_cols = !with_lora && sub ? prof.u32("matmul.gemv_cols") : 0u;
  const std::uint32_t wg = t_lanes || plain_cols > 0 ? lanes : prof.u32("matmul.gemv_wg");
  const std::uint32_t cols_per_wg = lora_cols > 0 ? lora_cols : plain_cols > 0 ? plain_cols : wg / lanes;
  const std::uint64_t stride = (push.K % 4 == 0 ? 4u : 1u) * lanes;
  // gallivm counts the loop checks of all loops of an invocation together: T's pairs x their K loop, then the
  // columns x (the K loop + the r terms).
  const auto ceil_div = [](std::uint64_t x, std::uint64_t y) { return (x + y - 1) / y; };
  const std::uint64_t subgroups = wg / lanes, col_rounds = ceil_div(cols_per_wg, sub ? subgroups : wg);
  const std::uint64_t t_rounds =
      !with_lora ? 0 : t_lanes ? kLoraTSlots : ceil_div(std::uint64_t{push.M} * lora.r, sub ? subgroups : wg);
  const std::uint64_t t_loop = t_lanes ? push.K / 4 : sub ? ceil_div(push.K, lanes) : push.K;
  const std::uint64_t t_checks = with_lora ? loop_checks(t_rounds) + t_rounds * loop_checks(t_loop) : 0;
  const std::uint64_t col_checks =
      loop_checks(ceil_div(push.K, stride)) + (with_lora ? loop_checks(ceil_div(lora.r, lanes)) : 0);
  check_loop_checks(dev, "ops::matmul", "GEMV: the loop over K = " + std::to_string(push.K),
                    t_checks + loop_checks(col_rounds) + col_rounds * col_checks);
  const bool f16 = b_dtype == DType::F16;
  const vk::ShaderId shader =
      with_lora ? (t_lanes ? (f16 ? shaders::nn_matmul_gemv_lora_lanes_b16 : shaders::nn_matmul_gemv_lora_lanes_f32)
                   : sub   ? (f16 ? shaders::nn_matmul_gemv_lora_subgroup_b16 : shaders::nn_matmul_gemv_lora_subgroup_f32)
                           : (f16 ? shaders::nn_matmul_gemv_lora_b16 : shaders::nn_matmul_gemv_lora_f32))
                : (sub ? (f16 ? shaders::nn_matmul_gemv_subgroup_b16 : shaders::nn_matmul_gemv_subgroup_f32)
                       : (f16 ? shaders::nn_matmul_gemv_b16 : shaders::nn_matmul_gemv_f32));
  const std::array<std::uint32_t, 3> groups{(push.N + cols_per_wg - 1) / cols_per_wg, 1, 1};
  if (!with_lora) {
    const auto& pipe = dev.pipeline({shader, {wg, cols_per_wg, push.M}, 3, sizeof(shader::MatmulPush)});
    seq.dispatch(pipe, {vk::reads(a), vk::reads(b), vk::writes(c)}, push, groups, "matmul_gemv");
    return true;
  }
  const shader::MatmulLoraPush lpush{push, lora.r, lora.scale};
  const auto& pipe = dev.pipeline({shader, {wg, cols_per_wg, push.M}, 5, sizeof(shader::MatmulLoraPush)});
  seq.dispatch(pipe, {vk::reads(a), vk::reads(b), vk::writes(c), vk::reads(*lora.la), vk::reads(*lora.lb)}, lpush,
               groups, "matmul_gemv_lora");
  return true;
}

std::uint32_t flags_of(const MatmulOptions& opt) {
  return (opt.accumulate ? MATMUL_ACCUMULATE : 0u) | (opt.trans_a ? MATMUL_TRANS_A : 0u) |
         (opt.trans_b ? MATMUL_TRANS_B : 0u);
}

std::uint32_t u32(std::int64_t v) { return static_cast<std::uint32_t>(v); }
}  // namespace

void matmul(vk::Sequence& seq, const DeviceTensor& a, const DeviceTensor& b, const DeviceTensor& c,
            const MatmulOptions& opt) {
  const auto [M, N, K] = check_matmul_shapes("ops::matmul", a.shape, b.shape, c.shape, opt);
  const auto& pipe = matmul_pipeline(seq.device(), a.dtype, b.dtype, c.dtype,
                                     describe("A", a) + ", " + describe("B", b) + ", " + describe("C", c));
  const shader::MatmulPush push{u32(M), u32(N), u32(K), u32(a.dim(1)), u32(b.dim(1)), u32(N), flags_of(opt),
                                opt.alpha, 0, 0};
  if (!gemv_dispatch(seq, a.dtype, b.dtype, c.dtype, a.buf, b.buf, c.buf, push))
    dispatch(seq, pipe, a.buf, b.buf, c.buf, push);
}

void matmul(vk::Sequence& seq, const DeviceTensor& a, const RowChunkedTensor& b, const DeviceTensor& c,
            const MatmulOptions& opt) {
  const auto [M, N, K] = check_matmul_shapes("ops::matmul", a.shape, b.shape, c.shape, opt);
  const auto& pipe =
      matmul_pipeline(seq.device(), a.dtype, b.dtype, c.dtype,
                      describe("A", a) + ", B " + shape_str(b.shape) + " " + dtype_name(b.dtype) + " in " +
                          std::to_string(b.chunks.size()) + " row chunks, " + describe("C", c));
  const std::int64_t ldb = b.shape[1];
  for (std::size_t i = 0; i < b.chunks.size(); ++i) {
    const DeviceTensor& chunk = b.chunks[i];
    const std::int64_t r0 = static_cast<std::int64_t>(i) * b.rows_per_chunk, rows = chunk.dim(0);
    shader::MatmulPush push{};
    push.ldb = u32(ldb);
    push.alpha = opt.alpha;
    push.flags = flags_of(opt);
    if (!opt.trans_b) {
      // B's rows r0.. are C's columns r0..: C[:, r0:r0+rows] = alpha * op(A) * chunk^T (+C), row stride N.
      push.M = u32(M), push.N = u32(rows), push.K = u32(K);
      push.lda = u32(a.dim(1)), push.ldc = u32(N), push.c_offset = u32(r0);
    } else {
      // B's rows r0.. are the reduction's k range: C (+)= alpha * op(A)[:, r0:r0+rows] * chunk, added chunk after
      // chunk onto the first (each chunk's partial sum is rounded into C once).
      push.M = u32(M), push.N = u32(N), push.K = u32(rows);
      push.lda = u32(a.dim(1)), push.ldc = u32(N);
      push.a_offset = u32(opt.trans_a ? r0 * a.dim(1) : r0);
      if (i > 0) push.flags |= MATMUL_ACCUMULATE;
    }
    if (!gemv_dispatch(seq, a.dtype, b.dtype, c.dtype, a.buf, chunk.buf, c.buf, push))
      dispatch(seq, pipe, a.buf, chunk.buf, c.buf, push);
  }
}

bool matmul_lora(vk::Sequence& seq, const DeviceTensor& a, const DeviceTensor& b, const DeviceTensor& c,
                 const DeviceTensor& la, const DeviceTensor& lb, float scale, const MatmulOptions& opt) {
  const auto [M, N, K] = check_matmul_shapes("ops::matmul_lora", a.shape, b.shape, c.shape, opt);
  check_lora_shapes("ops::matmul_lora", a.shape, la.shape, lb.shape, &c.shape);
  if (la.dtype != DType::F32 || lb.dtype != DType::F32) return false;
  const shader::MatmulPush push{u32(M), u32(N), u32(K), u32(a.dim(1)), u32(b.dim(1)), u32(N), flags_of(opt),
                                opt.alpha, 0, 0};
  return gemv_dispatch(seq, a.dtype, b.dtype, c.dtype, a.buf, b.buf, c.buf, push,
                       {&la.buf, &lb.buf, u32(la.dim(0)), scale});
}

}  // namespace pocketlora::ops
