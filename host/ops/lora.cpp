#include "host/ops/lora.h"

#include "host/core/error.h"
#include "host/ops/grid.h"
#include "host/ops/loop_limit.h"
#include "host/ops/matmul.h"
#include "host/ops/storage_variant.h"
#include "shaders/common/lora_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

void lora_dropout(vk::Sequence& seq, const DeviceTensor& in, const DeviceTensor& out, const DeviceTensor& key,
                  const LoraOptions& opt, bool accumulate) {
  if (in.shape != out.shape)
    throw ShapeError("ops::lora_dropout: " + describe("in", in) + " vs " + describe("out", out));
  if (key.dtype != DType::I32 || key.shape != Shape{kLoraKeyWords})
    throw ShapeError("ops::lora_dropout: " + describe("dropout key", key) + " — expected i32 [" +
                     std::to_string(kLoraKeyWords) + "]");
  if (opt.dropout < 0.0f || opt.dropout >= 1.0f)
    throw InvalidArgument("ops::lora_dropout: p must be in [0, 1), got " + std::to_string(opt.dropout));
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("lora.wg");
  const StorageVariant v = storage_variant(dev, "ops::lora_dropout", shaders::lora_dropout, shaders::lora_dropout_f16,
                                           {wg}, {{"in", &in}, {"out", &out}});
  shader::DropoutPush push{static_cast<std::uint32_t>(in.numel()), opt.stream, opt.dropout, accumulate ? 1u : 0u,
                           1.0f / (1.0f - opt.dropout), 0};
  seq.dispatch(dev.pipeline({v.shader, v.spec, 3, sizeof(push)}),
               {vk::reads(in.buf), vk::writes(out.buf), vk::reads(key.buf)}, push,
               grid_1d(dev, static_cast<std::uint64_t>(in.numel()), wg), "lora_dropout");
}

namespace {

// Generation's decode step: a few rows, no dropout — one fused dispatch (lora/forward_rows.comp) instead of two
// GEMMs, since at M <= 4 the adapter costs what its dispatches cost.
constexpr std::int64_t kRowsMaxM = 4;

bool use_rows_kernel(const DeviceTensor& x, const DeviceTensor& y, const DeviceTensor& t, const LoraOptions& opt,
                     std::int64_t M, std::int64_t r) {
  return opt.dropout == 0.0f && M <= kRowsMaxM && M * r <= LORA_ROWS_MAX_MR && x.dtype == DType::F32 &&
         y.dtype == DType::F32 && t.dtype == DType::F32;
}

void lora_forward_rows(vk::Sequence& seq, const DeviceTensor& x, const DeviceTensor& a, const DeviceTensor& b,
                       const DeviceTensor& y, const DeviceTensor& t, float scale, std::int64_t M, std::int64_t K,
                       std::int64_t N, std::int64_t r) {
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("lora.wg");
  const auto u = [](std::int64_t v) { return static_cast<std::uint64_t>(v); };
  check_loop_checks(dev, "ops::lora_forward", "K " + std::to_string(K) + " of the fused few-row kernel",
                    (u(M * r) / wg + 2) * loop_checks(u(K)) + loop_checks(u(M)) * loop_checks(u(r)));
  const std::uint64_t groups = (u(N) + wg - 1) / wg;
  if (groups > dev.caps().max_workgroup_count[0])
    throw DeviceLimitError("ops::lora_forward: N " + std::to_string(N) + " needs " + std::to_string(groups) +
                           " workgroups, device allows " + std::to_string(dev.caps().max_workgroup_count[0]));
  shader::LoraRowsPush push{static_cast<std::uint32_t>(M), static_cast<std::uint32_t>(K),
                            static_cast<std::uint32_t>(N), static_cast<std::uint32_t>(r), scale, 0};
  seq.dispatch(dev.pipeline({shaders::lora_forward_rows, {wg}, 5, sizeof(push)}),
               {vk::reads(x.buf), vk::reads(a.buf), vk::reads(b.buf), vk::writes(y.buf), vk::writes(t.buf)}, push,
               {static_cast<std::uint32_t>(groups), 1, 1}, "lora_forward_rows");
}

}  // namespace

std::uint64_t lora_scratch_bytes(const vk::Device& dev, std::int64_t M, std::int64_t K, std::int64_t r, DType x,
                                 const LoraOptions& opt, bool backward) {
  const auto mk = static_cast<std::uint64_t>(M * K);
  const bool drop = opt.dropout > 0.0f;
  if (!backward) return drop ? arena_bytes(dev, mk * dtype_size(x)) : 0;
  // G, then with dropout drop(X) and dX before dropout, all live at once.
  return arena_bytes(dev, static_cast<std::uint64_t>(M * r) * sizeof(float)) +
         (drop ? arena_bytes(dev, mk * dtype_size(x)) + arena_bytes(dev, mk * sizeof(float)) : 0);
}

void lora_forward(vk::Sequence& seq, vk::Arena& step, const DeviceTensor& x, const DeviceTensor& a,
                  const DeviceTensor& b, const DeviceTensor& y, const DeviceTensor& t, const DeviceTensor& key,
                  const LoraOptions& opt) {
  const auto [M, K, N, r] = check_lora_shapes("ops::lora_forward", x.shape, a.shape, b.shape, &y.shape);
  if (t.shape != Shape{M, r}) throw ShapeError("ops::lora_forward: " + describe("T", t) + " must be [M, r]");
  require_f32("ops::lora_forward", {{"A", &a}, {"B", &b}});
  require_f32_or_f16("ops::lora_forward", {{"X", &x}, {"Y", &y}, {"T", &t}});
  if (use_rows_kernel(x, y, t, opt, M, r)) return lora_forward_rows(seq, x, a, b, y, t, opt.scale, M, K, N, r);
  DeviceTensor xin = x;
  if (opt.dropout > 0.0f) {
    xin = allocate(step, {M, K}, x.dtype, "lora drop(X)");
    lora_dropout(seq, x, xin, key, opt, false);
  }
  matmul(seq, xin, a, t);                                 // T = drop(X) A^T
  matmul(seq, t, b, y, {opt.scale, /*accumulate=*/true});  // Y += s T B^T
}

void lora_backward(vk::Sequence& seq, vk::Arena& step, const DeviceTensor& x, const DeviceTensor& a,
                   const DeviceTensor& b, const DeviceTensor& t, const DeviceTensor& dy, const DeviceTensor& dx,
                   const DeviceTensor& da, const DeviceTensor& db, const DeviceTensor& key,
                   const LoraOptions& opt) {
  const auto [M, K, N, r] = check_lora_shapes("ops::lora_backward", x.shape, a.shape, b.shape, &dy.shape);
  (void)N;
  if (t.shape != Shape{M, r} || dx.shape != x.shape || da.shape != a.shape || db.shape != b.shape)
    throw ShapeError("ops::lora_backward: " + describe("T", t) + ", " + describe("dX", dx) + ", " + describe("dA", da) +
                     ", " + describe("dB", db) + " do not fit X " + shape_str(x.shape) + ", A " + shape_str(a.shape) +
                     ", B " + shape_str(b.shape));
  require_f32("ops::lora_backward", {{"A", &a}, {"B", &b}, {"dA", &da}, {"dB", &db}});
  require_f32_or_f16("ops::lora_backward", {{"X", &x}, {"T", &t}, {"dY", &dy}, {"dX", &dx}});
  const bool acc = opt.accumulate_grads;
  // dB = s dY^T T
  matmul(seq, dy, t, db, {opt.scale, acc, /*trans_a=*/true, /*trans_b=*/true});
  // G = dY B
  DeviceTensor g = allocate(step, {M, r}, DType::F32, "lora G");
  matmul(seq, dy, b, g, {1.0f, false, false, /*trans_b=*/true});
  // dA = s G^T drop(X)
  DeviceTensor xin = x;
  if (opt.dropout > 0.0f) {
    xin = allocate(step, {M, K}, x.dtype, "lora drop(X) (backward)");
    lora_dropout(seq, x, xin, key, opt, false);
  }
  matmul(seq, g, xin, da, {opt.scale, acc, true, true});
  // dX (+)= drop'(s G A)
  if (opt.dropout > 0.0f) {
    DeviceTensor dxd = allocate(step, {M, K}, DType::F32, "lora dX before dropout");
    matmul(seq, g, a, dxd, {opt.scale, false, false, true});
    lora_dropout(seq, dxd, dx, key, opt, acc);
  } else {
    matmul(seq, g, a, dx, {opt.scale, acc, false, true});
  }
}

}  // namespace pocketlora::ops
