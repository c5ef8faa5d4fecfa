// LoRA forward/backward (PEFT semantics) and its Philox dropout as op cases (tests/harness/op_case.h): GPU vs the
// reference, the reference backward vs finite differences, perf rows. Philox known answer and the mask's keep
// rate: tests/ref/test_lora_ref.cpp.
#include <cmath>

#include "common/error_message.h"
#include "harness/op_case.h"
#include "host/ref/lora.h"

#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/core/error.h"
#include "host/ops/lora.h"
#endif

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

struct LoraShape {
  std::int64_t M, K, N, r;
};

// Y += s * drop(X) A^T B^T (saving T = drop(X) A^T), then dB, dA, dX for an upstream dY, each accumulated into a
// non-zero start when opt.accumulate_grads. Gradient check: L = sum((Y - Y0) .* dY) w.r.t. X, A, B (Y0 only
// shifts L by a constant, and its O(M N) terms would swamp the central differences' rounding).
// Mixed precision (act = f16): X, Y, dY, dX and T stored f16, A, B, dA, dB f32. The reference then runs in f64
// on the same f16 inputs, with T rounded to f16 as stored (the GPU's Y and dB read that T), and the CPU backend
// runs at the case's dtypes (cpu()).
class LoraCase : public OpCase {
 public:
  LoraCase(LoraShape s, LoraOptions opt, LoraDropoutKey key, const std::string& variant, DType act = DType::F32)
      : s_(s), opt_(opt), key_(key), act_(act) {
    name = "lora/" + std::to_string(s.M) + "x" + std::to_string(s.K) + "x" + std::to_string(s.N) + "_r" +
           std::to_string(s.r) + "_drop" + std::to_string(static_cast<int>(std::lround(opt.dropout * 100))) +
           (opt.accumulate_grads ? "_acc" : "") + variant + (act == DType::F16 ? "_f16" : "");
  }
  // x, a, b, y0, dy, dx0, da0, db0
  std::vector<Tensor> inputs() const override {
    return {random_tensor({s_.M, s_.K}, 1, -1, 1, act_),
            random_tensor({s_.r, s_.K}, 2, -0.2f, 0.2f),
            random_tensor({s_.N, s_.r}, 3, -0.2f, 0.2f),
            random_tensor({s_.M, s_.N}, 4, -1, 1, act_),
            random_tensor({s_.M, s_.N}, 5, -1, 1, act_),
            random_tensor({s_.M, s_.K}, 6, -1, 1, act_),
            random_tensor({s_.r, s_.K}, 7),
            random_tensor({s_.N, s_.r}, 8)};
  }
  std::vector<std::string> output_names() const override { return {"T", "Y", "dB", "dA", "dX"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    return act_ == DType::F32 ? run_ref(in, DType::F32, DType::F32, DType::F32)
                              : run_ref(in, act_, DType::F64, DType::F64);
  }
  bool has_cpu() const override { return act_ != DType::F32; }
  std::vector<Tensor> cpu(const std::vector<Tensor>& in) const override { return run_ref(in, act_, act_, DType::F32); }
  // f32 GEMM chains vs f64: relative 1e-5 against the scale of each result (sqrt of its reduction length times
  // the operand magnitudes; a floor of sqrt(len) * 0.1 keeps near-zero sums from dominating). Reduction lengths:
  // T over K, Y over r, dB and dA over M, dX over N (dot_product_tolerance; it also bounds NMSE by 1e-10).
  // f16 storage: the f16 outputs (T, Y, dX) get dot_product_tolerance's f16 bound (1e-3 / 1e-6 NMSE); dB and dA
  // (f32) keep the f32 bound, their inputs being the same f16 values on both sides — except dA with dropout,
  // whose input drop(X) is stored f16 on the GPU and rounded from f32 (the reference rounds from f64: an
  // occasional 1-ulp f16 difference), so the f16 bound.
  Tolerance tolerance(std::size_t i) const override {
    const std::int64_t len[5] = {s_.K, s_.r, s_.M, s_.M, s_.N};
    const bool f16_out = act_ == DType::F16 && (i == 0 || i == 1 || i == 4 || (i == 3 && opt_.dropout > 0.0f));
    return dot_product_tolerance(len[i], 0.1, f16_out ? DType::F16 : DType::F32);
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto X = run.up(in[0]), A = run.up(in[1]), B = run.up(in[2]), Y = run.up(in[3]), DY = run.up(in[4]),
         DX = run.up(in[5]), DA = run.up(in[6]), DB = run.up(in[7]);
    auto T = run.zeros({s_.M, s_.r}, act_), key = run.up(lora_key_tensor(key_));
    ops::lora_forward(run.seq, run.arena, X, A, B, Y, T, key, opt_);
    ops::lora_backward(run.seq, run.arena, X, A, B, T, DY, DX, DA, DB, key, opt_);
    return {T, Y, DB, DA, DX};
  }
#endif
  // Every shape but the largest: each of the <= 4 x 256 sampled elements reruns the f64 forward.
  bool has_gradcheck() const override { return act_ == DType::F32 && s_.M * s_.K * s_.r <= 200000; }
  double loss(const std::vector<Tensor>& in) const override {
    Tensor y = Tensor::zeros({s_.M, s_.N}, DType::F64), t = Tensor::zeros({s_.M, s_.r}, DType::F64);
    ref::lora_forward(in[0], in[1], in[2], y, t, key_, opt_);
    return dot(y, in[4]);
  }
  std::vector<Tensor> gradient(const std::vector<Tensor>& in) const override {
    Tensor y = Tensor::zeros({s_.M, s_.N}, DType::F64), t = Tensor::zeros({s_.M, s_.r}, DType::F64);
    ref::lora_forward(in[0], in[1], in[2], y, t, key_, opt_);
    // Gradients from zero (with accumulate_grads the backward adds to them).
    Tensor dx = Tensor::zeros({s_.M, s_.K}, DType::F64), da = Tensor::zeros({s_.r, s_.K}, DType::F64),
           db = Tensor::zeros({s_.N, s_.r}, DType::F64);
    ref::lora_backward(in[0], in[1], in[2], t, in[4], dx, da, db, key_, opt_);
    // Y0, dY and the gradient starts are not differentiated.
    return {dx, da, db, Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
  // L is linear in every single element of X, A and B, so central differences have no truncation error at any
  // step: h = 1e-3 keeps their rounding (~ eps * sum |terms of L| / h, ~400 terms-worth at 33x70) far below 1e-8.
  GradTolerance grad_tolerance() const override { return {1e-8, 1e-3}; }
  // Forward: 2 GEMMs (2MKr + 2MrN) + the scaled add into Y; backward: dB (2MNr), G = dY B (2MNr), dA (2MrK),
  // s G A (2MrK); dropout adds O(MK).
  double flops() const override {
    const double M = static_cast<double>(s_.M), K = static_cast<double>(s_.K), N = static_cast<double>(s_.N),
                 r = static_cast<double>(s_.r);
    return 2 * M * K * r + 2 * M * r * N + 2 * M * N + 4 * M * N * r + 4 * M * r * K;
  }
  // Reads X, A, B, Y, dY and the gradient starts; writes Y, T, dX, dA, dB (f32).
  double bytes() const override {
    const double M = static_cast<double>(s_.M), K = static_cast<double>(s_.K), N = static_cast<double>(s_.N),
                 r = static_cast<double>(s_.r);
    return 4 * (2 * M * K + 2 * (r * K + N * r) + 3 * M * N + M * r + 2 * M * K + 2 * (r * K + N * r));
  }

 private:
  // Forward then backward through host/ref with T stored as t_dtype, Y and dX as act_out, dA and dB as grad.
  std::vector<Tensor> run_ref(const std::vector<Tensor>& in, DType t_dtype, DType act_out, DType grad) const {
    Tensor y = in[3].to(act_out), t = Tensor::zeros({s_.M, s_.r}, t_dtype), dx = in[5].to(act_out), da = in[6].to(grad),
           db = in[7].to(grad);
    ref::lora_forward(in[0], in[1], in[2], y, t, key_, opt_);
    ref::lora_backward(in[0], in[1], in[2], t, in[4], dx, da, db, key_, opt_);
    return {t, y, db, da, dx};
  }
  LoraShape s_;
  LoraOptions opt_;
  LoraDropoutKey key_;
  DType act_;
};

// out (+)= drop(in) with the Philox mask: the GPU mask must be the reference's bit for bit, for any key.
class LoraDropoutCase : public OpCase {
 public:
  LoraDropoutCase(std::int64_t n, LoraOptions opt, LoraDropoutKey key, bool accumulate)
      : n_(n), opt_(opt), key_(key), accumulate_(accumulate) {
    name = "lora_dropout/" + std::to_string(n) + "_p" + std::to_string(static_cast<int>(std::lround(opt.dropout * 100))) +
           "_stream" + std::to_string(opt.stream) + "_step" + std::to_string(key.step) + "_micro" +
           std::to_string(key.micro) + (accumulate ? "_acc" : "");
  }
  std::vector<Tensor> inputs() const override {
    Tensor ones = Tensor::zeros({n_});
    for (std::int64_t i = 0; i < n_; ++i) ones.data<float>()[i] = 1.0f;
    return {ones, random_tensor({n_}, 9)};  // in, the start of out
  }
  std::vector<std::string> output_names() const override { return {"out"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    Tensor d = lora_dropout_ref(in[0], key_, opt_);
    if (!accumulate_) return {d};
    Tensor out = in[1].clone();
    for (std::int64_t i = 0; i < n_; ++i) out.data<float>()[i] += d.data<float>()[i];
    return {out};
  }
  // Overwriting: the mask and the 1 / (1 - p) scale are the reference's bit for bit (max_abs 0). Accumulating:
  // one f32 multiply-add, which the GPU may fuse (one rounding instead of two): 1 ulp, max_rel 1.2e-7.
  Tolerance tolerance(std::size_t) const override {
    Tolerance t;
    if (accumulate_) {
      t.max_rel = 1.2e-7;
    } else {
      t.max_abs = 0;
    }
    return t;
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto x = run.up(in[0]), out = accumulate_ ? run.up(in[1]) : run.zeros({n_}, DType::F32);
    ops::lora_dropout(run.seq, x, out, run.up(lora_key_tensor(key_)), opt_, accumulate_);
    return {out};
  }
#endif
  double flops() const override { return (accumulate_ ? 2.0 : 1.0) * static_cast<double>(n_); }
  double bytes() const override { return (accumulate_ ? 12.0 : 8.0) * static_cast<double>(n_); }

 private:
  std::int64_t n_;
  LoraOptions opt_;
  LoraDropoutKey key_;
  bool accumulate_;
};

// The same with f16 storage: in f16 (random, nonzero, so a dropped element reads 0 against a kept non-zero one:
// the mask is still checked exactly), out f16 overwritten or f32 accumulated. The reference in f64 on the same
// f16 inputs, the CPU backend at the case's dtypes (cpu()). f16 out: one rounding of the f32 product
// (f16_storage_tolerance); f32 out += f16 * scale: two f32 roundings of terms up to 2.4 in magnitude, at most
// 2.4 * 2^-23 = 2.9e-7 against max(|want|, 1) (the sum may cancel).
class LoraDropoutF16Case : public OpCase {
 public:
  LoraDropoutF16Case(std::int64_t n, LoraOptions opt, LoraDropoutKey key, DType out)
      : n_(n), opt_(opt), key_(key), out_(out) {
    name = "lora_dropout/" + std::to_string(n) + "_in_f16_out_" + dtype_name(out) + (out == DType::F32 ? "_acc" : "");
  }
  std::vector<Tensor> inputs() const override {
    return {random_tensor({n_}, 8, -1, 1, DType::F16), random_tensor({n_}, 9, -1, 1, out_)};
  }
  std::vector<std::string> output_names() const override { return {"out"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override { return run_ref(in, DType::F64); }
  bool has_cpu() const override { return true; }
  std::vector<Tensor> cpu(const std::vector<Tensor>& in) const override { return run_ref(in, out_); }
  Tolerance tolerance(std::size_t) const override {
    if (out_ == DType::F16) return f16_storage_tolerance(1e-3);
    Tolerance t;
    t.max_rel = 3e-7;
    t.rel_floor = 1.0;
    return t;
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto x = run.up(in[0]), out = accumulate() ? run.up(in[1]) : run.zeros({n_}, out_);
    ops::lora_dropout(run.seq, x, out, run.up(lora_key_tensor(key_)), opt_, accumulate());
    return {out};
  }
#endif

 private:
  bool accumulate() const { return out_ == DType::F32; }
  // drop(in) in f64, added onto the start of out when accumulating, stored as `dtype`.
  std::vector<Tensor> run_ref(const std::vector<Tensor>& in, DType dtype) const {
    Tensor d = lora_dropout_ref(in[0].to(DType::F64), key_, opt_);
    if (accumulate()) {
      const Tensor start = in[1].to(DType::F64);
      for (std::int64_t i = 0; i < n_; ++i) d.data<double>()[i] += start.data<double>()[i];
    }
    return {d.to(dtype)};
  }
  std::int64_t n_;
  LoraOptions opt_;
  LoraDropoutKey key_;
  DType out_;
};

std::vector<OpCasePtr> lora_cases() {
  std::vector<OpCasePtr> v;
  // PEFT scale alpha / r with alpha 16, gradients accumulated into non-zero starts, dropout on some shapes.
  const std::pair<LoraShape, float> accumulating[] = {{{1, 17, 9, 1}, 0.0f},    {{7, 64, 33, 8}, 0.0f},
                                                      {{33, 130, 70, 16}, 0.1f}, {{16, 96, 40, 64}, 0.05f},
                                                      {{5, 200, 128, 128}, 0.0f},
                                                      // The GPU's fused few-row forward (M <= 4, M * r <= 256), at
                                                      // its limits and over several workgroups of outputs.
                                                      {{4, 200, 130, 64}, 0.0f},  {{2, 70, 257, 8}, 0.0f}};
  for (const auto& [s, p] : accumulating) {
    LoraOptions opt;
    opt.scale = lora_scale(16.0f, s.r, false);
    opt.dropout = p;
    opt.stream = 7;
    opt.accumulate_grads = true;
    v.push_back(std::make_shared<LoraCase>(s, opt, LoraDropoutKey{0x1234567890abcdefull, 0, 0}, ""));
  }
  {  // rsLoRA scale alpha / sqrt(r), heavy dropout, gradients overwritten (the reference's old gradient check)
    LoraOptions opt;
    opt.scale = lora_scale(8.0f, 3, true);
    opt.dropout = 0.3f;
    v.push_back(std::make_shared<LoraCase>(LoraShape{4, 5, 6, 3}, opt, LoraDropoutKey{99, 0, 0}, "_rslora"));
    // A later step and micro-batch of the same seed (the counter words of the key).
    v.push_back(std::make_shared<LoraCase>(LoraShape{4, 5, 6, 3}, opt, LoraDropoutKey{99, 12, 1}, "_rslora_step12"));
  }
  // Mixed precision: f16 activations and T with f32 A, B and gradients, with and without dropout.
  for (const auto& [s, p] : {std::pair<LoraShape, float>{{7, 64, 33, 8}, 0.0f}, {{33, 130, 70, 16}, 0.1f}}) {
    LoraOptions opt;
    opt.scale = lora_scale(16.0f, s.r, false);
    opt.dropout = p;
    opt.stream = 7;
    opt.accumulate_grads = true;
    v.push_back(std::make_shared<LoraCase>(s, opt, LoraDropoutKey{0x1234567890abcdefull, 0, 0}, "", DType::F16));
  }
  LoraOptions d;
  d.dropout = 0.25f;
  d.stream = 3;
  const LoraDropoutKey key{42, 0, 0};
  v.push_back(std::make_shared<LoraDropoutCase>(50000, d, key, false));
  v.push_back(std::make_shared<LoraDropoutCase>(4099, d, key, true));
  v.push_back(std::make_shared<LoraDropoutCase>(4099, d, LoraDropoutKey{42, 0xfffffffeu, 3}, false));  // counter words
  d.stream = 4;  // another stream: another mask, still the reference's
  v.push_back(std::make_shared<LoraDropoutCase>(4099, d, key, false));
  for (DType out : {DType::F16, DType::F32}) v.push_back(std::make_shared<LoraDropoutF16Case>(4099, d, key, out));
  return v;
}

POCKETLORA_OP_CASES(Lora, lora_cases)

#if POCKETLORA_HAS_VULKAN
TEST_F(GpuTest, LoraRejectsBadShapes) {
  auto x = ops::allocate(arena(), {4, 8}, DType::F32, "x"), a = ops::allocate(arena(), {2, 7}, DType::F32, "a");
  auto b = ops::allocate(arena(), {5, 2}, DType::F32, "b"), y = ops::allocate(arena(), {4, 5}, DType::F32, "y");
  auto t = ops::allocate(arena(), {4, 2}, DType::F32, "t");
  vk::Sequence seq(dev());
  EXPECT_TRUE(mentions(error_of<ShapeError>([&] { ops::lora_forward(seq, arena(), x, a, b, y, t, {}, {}); }),
                       {"A [2, 7]"}));
  auto a0 = ops::allocate(arena(), {0, 8}, DType::F32, "a0");
  EXPECT_THROW(ops::lora_forward(seq, arena(), x, a0, b, y, t, {}, {}), ShapeError);  // rank 0
}
#endif

}  // namespace
