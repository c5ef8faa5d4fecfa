#include "host/ops/nf4_matmul.h"

#include <algorithm>
#include <cstring>

#include "host/core/error.h"
#include "host/ops/loop_limit.h"
#include "runtime/error.h"
#include "shaders/common/nf4_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

namespace {

constexpr std::int64_t kBlock = 64;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Uploads bytes into a slice padded to whole 32-bit words (the shaders read words).
DeviceTensor upload_bytes(vk::Device& dev, vk::Arena& arena, const void* data, std::size_t n, DType dt,
                          const std::string& what) {
  const std::size_t padded = std::max<std::size_t>(4, (n + 3) / 4 * 4);
  std::vector<std::uint8_t> tmp(padded, 0);
  if (n) std::memcpy(tmp.data(), data, n);
  DeviceTensor t;
  t.dtype = dt;
  t.shape = {static_cast<std::int64_t>(n / dtype_size(dt))};
  t.buf = arena.allocate(padded, what);
  dev.upload(t.buf, tmp.data(), padded);
  return t;
}

void check_options(const char* op, const MatmulOptions& opt) {
  if (opt.trans_a || opt.trans_b)
    throw InvalidArgument(std::string(op) + ": transposed operands are not supported (W is always [N,K])");
}

void check_weight(const char* op, const Nf4Weight& w) {
  if (w.shape.size() != 2 || w.shape[0] <= 0 || w.shape[1] <= 0)
    throw ShapeError(std::string(op) + ": NF4 weight '" + w.name + "' must be 2-D [N,K], got " + shape_str(w.shape));
}

// Specialization constants: the kernel's own (ids 0..) then, at id 10, the codebook decode strategy.
std::vector<std::uint32_t> spec(const vk::Device& dev, std::vector<std::uint32_t> own) {
  own.resize(11, 0);
  own[10] = dev.profile().flag("nf4.select_decode") ? 1u : 0u;
  return own;
}

shader::Nf4MatmulPush make_push(const Nf4Weight& w, std::int64_t M, const MatmulOptions& opt) {
  return {static_cast<std::uint32_t>(M), static_cast<std::uint32_t>(w.shape[0]), static_cast<std::uint32_t>(w.shape[1]),
          w.double_quant ? 1u : 0u, w.offset, opt.alpha, opt.accumulate ? 1u : 0u, w.nested_block};
}

// Rows per invocation: the profile's tile, shrunk to the next power of two >= M so small batches do not
// compute clamped duplicate rows (dX at M=16 with a 32-row tile wasted half its work).
std::uint32_t rows_per_invocation(std::uint32_t tile, std::int64_t M) {
  std::uint32_t t = 1;
  while (t < tile && static_cast<std::int64_t>(t) < M) t *= 2;
  return std::min(t, tile);
}

std::vector<vk::Access> weight_reads(const Nf4Weight& w) {
  return {vk::reads(w.codes.buf), vk::reads(w.absmax.buf), vk::reads(w.nested.buf), vk::reads(w.code_map.buf)};
}

void check_activation_dtype(const char* op, const DeviceTensor& a, const DeviceTensor& b, vk::Device& dev) {
  if (a.dtype != b.dtype || (a.dtype != DType::F32 && a.dtype != DType::F16))
    throw ShapeError(std::string(op) + ": activations " + describe("in", a) + " and " + describe("out", b) +
                     " must both be f32 or both f16");
  if (a.dtype == DType::F16 && !dev.caps().storage_16bit)
    throw DeviceLimitError(std::string(op) + ": f16 activations need 16-bit storage, which '" + dev.caps().name + "' lacks");
}

}  // namespace

Nf4Weight upload_nf4(vk::Device& dev, vk::Arena& arena, const Nf4Quantized& q, const std::string& name) {
  Nf4Weight w;
  w.name = name;
  w.shape = q.shape;
  check_weight("upload_nf4", w);
  const std::int64_t n = shape_numel(q.shape);
  const std::int64_t blocks = ceil_div(n, kBlock);
  if (static_cast<std::int64_t>(q.codes.size()) != ceil_div(n, 2))
    throw ShapeError("upload_nf4: '" + name + "' " + shape_str(q.shape) + " needs " + std::to_string(ceil_div(n, 2)) +
                     " code bytes, got " + std::to_string(q.codes.size()));
  w.double_quant = q.double_quant;
  w.codes = upload_bytes(dev, arena, q.codes.data(), q.codes.size(), DType::U8, name + ".codes");
  if (w.double_quant) {
    const auto& dq = q.dq;
    if (static_cast<std::int64_t>(dq.absmax_q.size()) != blocks || dq.code_map.size() != 256 ||
        static_cast<std::int64_t>(dq.nested_absmax.size()) != ceil_div(blocks, kNf4NestedBlockSize))
      throw ShapeError("upload_nf4: '" + name + "' double-quant state does not fit " + shape_str(q.shape) + ": " +
                       std::to_string(dq.absmax_q.size()) + " absmax codes (want " + std::to_string(blocks) +
                       "), " + std::to_string(dq.nested_absmax.size()) + " nested scales, " +
                       std::to_string(dq.code_map.size()) + "-entry code map (want 256)");
    w.absmax = upload_bytes(dev, arena, dq.absmax_q.data(), dq.absmax_q.size(), DType::U8, name + ".absmax_q");
    w.nested = upload_bytes(dev, arena, dq.nested_absmax.data(), dq.nested_absmax.size() * sizeof(float), DType::F32,
                            name + ".nested");
    w.code_map = upload_bytes(dev, arena, dq.code_map.data(), dq.code_map.size() * sizeof(float), DType::F32,
                              name + ".map");
    w.offset = dq.offset;
    w.nested_block = static_cast<std::uint32_t>(kNf4NestedBlockSize);
  } else {
    if (static_cast<std::int64_t>(q.absmax.size()) != blocks)
      throw ShapeError("upload_nf4: '" + name + "' " + shape_str(q.shape) + " needs " + std::to_string(blocks) +
                       " absmax values, got " + std::to_string(q.absmax.size()));
    w.absmax = upload_bytes(dev, arena, q.absmax.data(), q.absmax.size() * sizeof(float), DType::F32, name + ".absmax");
    const float zero = 0.0f;
    w.nested = upload_bytes(dev, arena, &zero, 4, DType::F32, name + ".nested(unused)");
    w.code_map = upload_bytes(dev, arena, &zero, 4, DType::F32, name + ".map(unused)");
  }
  return w;
}

void nf4_matmul(vk::Sequence& seq, const DeviceTensor& x, const Nf4Weight& w, const DeviceTensor& y,
                const MatmulOptions& opt) {
  check_weight("ops::nf4_matmul", w);
  check_options("ops::nf4_matmul", opt);
  vk::Device& dev = seq.device();
  if (x.rank() != 2 || y.rank() != 2 || x.dim(1) != w.shape[1] || y.dim(0) != x.dim(0) || y.dim(1) != w.shape[0])
    throw ShapeError("ops::nf4_matmul: X " + shape_str(x.shape) + ", W '" + w.name + "' " + shape_str(w.shape) +
                     ", Y " + shape_str(y.shape) + " — expected X [M,K], W [N,K], Y [M,N]");
  check_activation_dtype("ops::nf4_matmul", x, y, dev);
  const std::int64_t M = x.dim(0);
  if (M == 0) return;
  const auto& prof = dev.profile();
  const bool f16 = x.dtype == DType::F16;
  auto push = make_push(w, M, opt);
  auto args = weight_reads(w);
  args.insert(args.begin(), vk::reads(x.buf));
  args.push_back(vk::writes(y.buf));
  const auto N = static_cast<std::uint32_t>(w.shape[0]);
  if (M <= prof.param("nf4.gemv_max_m") && M <= 4) {
    const std::uint32_t wg = prof.u32("nf4.gemv_wg");
    const bool sub = prof.flag("nf4.gemv_subgroup") && dev.caps().subgroup_arithmetic() &&
                     wg % dev.caps().subgroup_size == 0;
    const std::uint32_t rows_per_wg = sub ? wg / dev.caps().subgroup_size : wg;
    // Each lane walks K in whole 64-blocks, code words or single weights (by K's alignment), lanes apart.
    const auto K = static_cast<std::uint64_t>(w.shape[1]);
    const std::uint64_t stride = (K % 64 == 0 ? 64 : K % 8 == 0 ? 8 : 1) * (sub ? dev.caps().subgroup_size : 1);
    check_loop_checks(dev, "ops::nf4_matmul", "GEMV, W '" + w.name + "': the loop over K = " + std::to_string(K),
                      loop_checks((K + stride - 1) / stride));
    const vk::ShaderId shader = sub ? (f16 ? shaders::nf4_gemv_subgroup_f16 : shaders::nf4_gemv_subgroup_f32)
                                    : (f16 ? shaders::nf4_gemv_f16 : shaders::nf4_gemv_f32);
    const auto& pipe = dev.pipeline({shader, spec(dev, {wg, rows_per_wg, static_cast<std::uint32_t>(M)}), 6, sizeof(push)});
    seq.dispatch(pipe, args, &push, sizeof(push), {(N + rows_per_wg - 1) / rows_per_wg, 1, 1}, "nf4_gemv");
    return;
  }
  const std::uint32_t wx = prof.u32("nf4.wg_x"), wy = prof.u32("nf4.wg_y"),
                      tm = rows_per_invocation(prof.u32("nf4.tm"), M), tn = prof.u32("nf4.tn");
  const auto Mu = static_cast<std::uint32_t>(M);
  // Shared-memory tiles where the profile says local memory pays off (and the tile fits the device's limit).
  const std::uint32_t bk = prof.u32("nf4.shared_bk");
  const std::uint64_t shared_bytes = 4ull * bk * (wy * tm + wx * tn);
  if (prof.flag("nf4.shared_tiles") && w.shape[1] % 8 == 0 && bk % 8 == 0 &&
      shared_bytes <= dev.caps().max_shared_memory) {
    const auto& pipe = dev.pipeline({f16 ? shaders::nf4_matmul_shared_f16 : shaders::nf4_matmul_shared_f32,
                                     spec(dev, {wx, wy, tm, tn, bk}), 6, sizeof(push)});
    seq.dispatch(pipe, args, &push, sizeof(push),
                 {(N + wx * tn - 1) / (wx * tn), (Mu + wy * tm - 1) / (wy * tm), 1}, "nf4_matmul_shared");
    return;
  }
  // The tiled kernel walks K 8 weights per step when rows start on a code word, else one weight per step.
  const auto K = static_cast<std::uint64_t>(w.shape[1]);
  check_loop_checks(dev, "ops::nf4_matmul", "W '" + w.name + "': the loop over K = " + std::to_string(K),
                    loop_checks(K % 8 == 0 ? K / 8 : K));
  const auto& pipe = dev.pipeline({f16 ? shaders::nf4_matmul_f16 : shaders::nf4_matmul_f32, spec(dev, {wx, wy, tm, tn}), 6, sizeof(push)});
  seq.dispatch(pipe, args, &push, sizeof(push), {(N + wx * tn - 1) / (wx * tn), (Mu + wy * tm - 1) / (wy * tm), 1},
               "nf4_matmul");
}

void nf4_matmul_backward(vk::Sequence& seq, const Nf4Weight& w, const DeviceTensor& dy, const DeviceTensor& dx,
                         const MatmulOptions& opt) {
  check_weight("ops::nf4_matmul_backward", w);
  check_options("ops::nf4_matmul_backward", opt);
  vk::Device& dev = seq.device();
  if (dy.rank() != 2 || dx.rank() != 2 || dy.dim(1) != w.shape[0] || dx.dim(0) != dy.dim(0) || dx.dim(1) != w.shape[1])
    throw ShapeError("ops::nf4_matmul_backward: dY " + shape_str(dy.shape) + ", W '" + w.name + "' " +
                     shape_str(w.shape) + ", dX " + shape_str(dx.shape) + " — expected dY [M,N], W [N,K], dX [M,K]");
  check_activation_dtype("ops::nf4_matmul_backward", dy, dx, dev);
  check_loop_checks(dev, "ops::nf4_matmul_backward", "W '" + w.name + "': the loop over N = " + std::to_string(w.shape[0]),
                    loop_checks(static_cast<std::uint64_t>(w.shape[0])));
  const std::int64_t M = dy.dim(0);
  if (M == 0) return;
  const auto& prof = dev.profile();
  const std::uint32_t wx = prof.u32("nf4.wg_x"), wy = prof.u32("nf4.wg_y"),
                      tm = rows_per_invocation(prof.u32("nf4.dx_tm"), M);
  auto push = make_push(w, M, opt);
  auto args = weight_reads(w);
  args.insert(args.begin(), vk::reads(dy.buf));
  args.push_back(vk::writes(dx.buf));
  const auto& pipe =
      dev.pipeline({dy.dtype == DType::F16 ? shaders::nf4_matmul_dx_f16 : shaders::nf4_matmul_dx_f32, spec(dev, {wx, wy, tm}), 6,
                    sizeof(push)});
  const auto K = static_cast<std::uint32_t>(w.shape[1]), Mu = static_cast<std::uint32_t>(M);
  seq.dispatch(pipe, args, &push, sizeof(push), {(K + wx * 8 - 1) / (wx * 8), (Mu + wy * tm - 1) / (wy * tm), 1},
               "nf4_matmul_dx");
}

void nf4_dequantize(vk::Sequence& seq, const Nf4Weight& w, const DeviceTensor& out) {
  check_weight("ops::nf4_dequantize", w);
  if (out.shape != w.shape || out.dtype != DType::F32)
    throw ShapeError("ops::nf4_dequantize: output " + describe("out", out) + " must be f32 " + shape_str(w.shape) +
                     " like W '" + w.name + "'");
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("nf4.wg");
  auto push = make_push(w, 1, {});
  auto args = weight_reads(w);
  args.insert(args.begin(), vk::reads(w.codes.buf));  // binding 0 unused by this shader
  args.push_back(vk::writes(out.buf));
  const auto& pipe = dev.pipeline({shaders::nf4_dequantize, spec(dev, {wg}), 6, sizeof(push)});
  const std::uint64_t groups = (static_cast<std::uint64_t>(shape_numel(w.shape)) + wg - 1) / wg;
  const std::uint32_t gx = static_cast<std::uint32_t>(std::min<std::uint64_t>(groups, 65535));
  const std::uint32_t gy = static_cast<std::uint32_t>((groups + gx - 1) / gx);
  seq.dispatch(pipe, args, &push, sizeof(push), {gx, gy, 1}, "nf4_dequantize");
}

}  // namespace pocketlora::ops
