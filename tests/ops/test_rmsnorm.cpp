// RMSNorm as op cases (tests/harness/op_case.h): GPU forward and backward (dw accumulated) vs the reference; the
// reference backward against finite differences. Hand-computed forward: tests/ref/test_rmsnorm_ref.cpp.
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "common/error_message.h"
#include "harness/op_case.h"
#include "host/ref/rmsnorm.h"

#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/core/error.h"
#include "host/ops/rmsnorm.h"
#include "runtime/command.h"
#endif

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

constexpr float kEps = 1e-5f;

// f32 on the GPU vs f64 reference: a row sum of D squares (relative error ~D * 2^-24 worst case, ~sqrt(D) typ.)
// then O(1) products: max relative error 1e-5 against max(|ref|, 1e-2) for D <= 1000.
Tolerance f32_tol() {
  Tolerance t;
  t.max_rel = 1e-5;
  t.rel_floor = 1e-2;
  return t;
}

// Storage dtypes of the activations (rstd, w and dw stay f32). All f32: training in f32. Mixed: the residual
// stream x and its gradient dx f32, the normalised y (a projection's input) and its gradient dy f16.
struct RmsNormStorage {
  DType x = DType::F32, y = DType::F32, dy = DType::F32, dx = DType::F32;
  std::string label() const {
    if (x == DType::F32 && y == DType::F32 && dy == DType::F32 && dx == DType::F32) return "";
    return std::string("_x") + dtype_name(x) + "_y" + dtype_name(y) + "_dy" + dtype_name(dy) + "_dx" + dtype_name(dx);
  }
  bool all_f32() const { return label().empty(); }
};

// y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps); backward dx and dw += (dw accumulated onto an initial value).
// Inputs x in [-2, 2], w in [0.5, 1.5], dy and the initial dw in [-1, 1]. Gradient check: L = sum(y .* dy).
// With f16 operands the reference runs in f64 on the same f16 values, and the CPU backend runs at the case's
// storage dtypes too (cpu()); f16 outputs: f16_storage_tolerance, f32 outputs of f16 inputs (rstd, dw): the f32
// bounds.
class RmsNormCase : public OpCase {
 public:
  RmsNormCase(std::int64_t rows, std::int64_t dim, std::array<std::uint64_t, 4> seeds, RmsNormStorage st = {})
      : rows_(rows), dim_(dim), seeds_(seeds), st_(st) {
    name = "rmsnorm/" + std::to_string(rows) + "x" + std::to_string(dim) + st.label();
  }
  // x, w, dy, dw0 (the value dw accumulates onto).
  std::vector<Tensor> inputs() const override {
    return {random_tensor({rows_, dim_}, seeds_[0], -2, 2, st_.x), random_tensor({dim_}, seeds_[1], 0.5f, 1.5f),
            random_tensor({rows_, dim_}, seeds_[2], -1, 1, st_.dy), random_tensor({dim_}, seeds_[3])};
  }
  std::vector<std::string> output_names() const override { return {"y", "rstd", "dx", "dw"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    const DType out = st_.all_f32() ? DType::F32 : DType::F64;
    return run_ref(in, out, out, out);
  }
  bool has_cpu() const override { return !st_.all_f32(); }
  std::vector<Tensor> cpu(const std::vector<Tensor>& in) const override {
    return run_ref(in, st_.y, st_.dx, DType::F32);
  }
  Tolerance tolerance(std::size_t i) const override {
    Tolerance t =
        (i == 0 && st_.y == DType::F16) || (i == 2 && st_.dx == DType::F16) ? f16_storage_tolerance(1e-2) : f32_tol();
    // dx = rstd*g*w - k*x subtracts two O(1) terms (inputs in [-2, 2], w in [0.5, 1.5]): judge it relative to
    // that O(1) scale (rel_floor 1), not to the possibly tiny difference.
    if (i == 2) t.rel_floor = 1.0;
    // dw = dw0 + a sum of `rows` O(1) products, typical magnitude sqrt(rows): relative to that scale.
    if (i == 3) t.rel_floor = std::sqrt(static_cast<double>(rows_));
    return t;
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto x = run.up(in[0], "x"), w = run.up(in[1], "w"), dy = run.up(in[2], "dy"), dw = run.up(in[3], "dw");
    auto y = run.zeros({rows_, dim_}, st_.y), rstd = run.zeros({rows_}, DType::F32),
         dx = run.zeros({rows_, dim_}, st_.dx);
    ops::rmsnorm(run.seq, x, w, y, rstd, kEps);
    ops::rmsnorm_backward(run.seq, x, w, rstd, dy, dx, dw, /*accumulate_dw=*/true);
    return {y, rstd, dx, dw};
  }
#endif
  // Small shapes only (the rounding error of central differences grows with |L|); h = 1e-6: error ~1e-9.
  bool has_gradcheck() const override { return st_.all_f32() && rows_ * dim_ <= 256; }
  double loss(const std::vector<Tensor>& in) const override {
    Tensor y = Tensor::zeros({rows_, dim_}, DType::F64), rstd = Tensor::zeros({rows_}, DType::F64);
    ref::rmsnorm(in[0], in[1], y, rstd, kEps);
    return dot(y, in[2]);
  }
  std::vector<Tensor> gradient(const std::vector<Tensor>& in) const override {
    Tensor y = Tensor::zeros({rows_, dim_}, DType::F64), rstd = Tensor::zeros({rows_}, DType::F64);
    ref::rmsnorm(in[0], in[1], y, rstd, kEps);
    Tensor dx = Tensor::zeros({rows_, dim_}, DType::F64), dw = Tensor::zeros({dim_}, DType::F64);
    ref::rmsnorm_backward(in[0], in[1], rstd, in[2], dx, dw);
    return {dx, dw, Tensor(), Tensor()};  // dy (the loss weight) and dw0 are not differentiated
  }
  GradTolerance grad_tolerance() const override { return {1e-7}; }
  // Forward ~4 flops per element (square, add, two multiplies), backward ~9 (g = dy w, g.x, dx, dw). Bytes: forward
  // x, w in and y, rstd out; backward x, w, rstd, dy, dw in and dx, dw out.
  double flops() const override { return 13.0 * static_cast<double>(rows_ * dim_); }
  double bytes() const override {
    return 4.0 * static_cast<double>((2 * rows_ * dim_ + dim_ + rows_) + (3 * rows_ * dim_ + 3 * dim_ + rows_));
  }

 private:
  // Forward then backward (dw accumulated onto dw0), outputs stored as y_dtype / dx_dtype / f32 rstd and dw
  // (or f64 for every output: the reference of f16 cases).
  std::vector<Tensor> run_ref(const std::vector<Tensor>& in, DType y_dtype, DType dx_dtype, DType stat_dtype) const {
    Tensor y = Tensor::zeros({rows_, dim_}, y_dtype), rstd = Tensor::zeros({rows_}, stat_dtype);
    ref::rmsnorm(in[0], in[1], y, rstd, kEps);
    Tensor dx = Tensor::zeros({rows_, dim_}, dx_dtype), dw = in[3].to(stat_dtype);
    ref::rmsnorm_backward(in[0], in[1], rstd, in[2], dx, dw, /*accumulate_dw=*/true);
    return {y, rstd, dx, dw};
  }
  std::int64_t rows_, dim_;
  std::array<std::uint64_t, 4> seeds_;
  RmsNormStorage st_;
};

std::vector<OpCasePtr> rmsnorm_cases() {
  std::vector<OpCasePtr> v;
  for (auto [rows, dim] : {std::array<std::int64_t, 2>{1, 64}, std::array<std::int64_t, 2>{7, 172},
                           std::array<std::int64_t, 2>{33, 257}, std::array<std::int64_t, 2>{130, 96}})
    v.push_back(std::make_shared<RmsNormCase>(rows, dim, std::array<std::uint64_t, 4>{1, 2, 3, 4}));
  // f16 storage: every activation f16, and the mixed layout of the training step.
  const RmsNormStorage all_f16{DType::F16, DType::F16, DType::F16, DType::F16};
  const RmsNormStorage mixed{DType::F32, DType::F16, DType::F16, DType::F32};
  for (const RmsNormStorage& st : {all_f16, mixed})
    for (auto [rows, dim] : {std::array<std::int64_t, 2>{7, 172}, std::array<std::int64_t, 2>{33, 257}})
      v.push_back(std::make_shared<RmsNormCase>(rows, dim, std::array<std::uint64_t, 4>{1, 2, 3, 4}, st));
  // The gradient check's shape and data (x seed 10, w 11, the loss weight dy 9).
  v.push_back(std::make_shared<RmsNormCase>(5, 12, std::array<std::uint64_t, 4>{10, 11, 9, 12}));
  return v;
}

POCKETLORA_OP_CASES(RmsNorm, rmsnorm_cases)

#if POCKETLORA_HAS_VULKAN
TEST_F(GpuTest, RmsNormRejectsBadShapes) {
  auto x = ops::allocate(arena(), {4, 8}, DType::F32, "x"), w = ops::allocate(arena(), {7}, DType::F32, "w");
  auto y = ops::allocate(arena(), {4, 8}, DType::F32, "y"), r = ops::allocate(arena(), {4}, DType::F32, "r");
  vk::Sequence seq(dev());
  EXPECT_TRUE(mentions(error_of<ShapeError>([&] { ops::rmsnorm(seq, x, w, y, r, 1e-5f); }), {"[4, 8]", "[7]"}));
}
#endif

}  // namespace
