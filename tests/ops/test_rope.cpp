// RoPE as op cases (tests/harness/op_case.h): the GPU kernel vs the reference in both layouts, forward and inverse;
// the reference's backward (the inverse rotation) against finite differences. Hand-computed reference checks:
// tests/ref/test_rope_ref.cpp.
#include <array>
#include <string>
#include <vector>

#include "harness/op_case.h"
#include "host/ref/rope.h"

#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/core/error.h"
#include "host/ops/rope.h"
#include "runtime/command.h"
#endif

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

// x [T, H, D] rotated in place by the table rows at positions (i * 7) % (T + 3) (repeats and out-of-order positions),
// Llama 3 frequencies (theta 500000, scaled). Gradient check: L = sum(rope(x) .* w), dL/dx = rope(w, !inverse).
// f16 x: the reference rotates the same f16 values in f64, the CPU backend rotates the f16 tensor (cpu()).
class RopeCase : public OpCase {
 public:
  RopeCase(std::int64_t T, std::int64_t H, std::int64_t D, RopeLayout layout, bool inverse, DType dtype = DType::F32)
      : T_(T), H_(H), D_(D), layout_(layout), inverse_(inverse), dtype_(dtype) {
    name = "rope/T" + std::to_string(T) + "_h" + std::to_string(H) + "_d" + std::to_string(D) + "/" +
           (layout == RopeLayout::Interleaved ? "interleaved" : "rotate_half") + (inverse ? "_inverse" : "") +
           (dtype == DType::F16 ? "_f16" : "");
  }
  // x, positions, table.
  std::vector<Tensor> inputs() const override {
    std::vector<std::int32_t> p(static_cast<std::size_t>(T_));
    for (std::int64_t i = 0; i < T_; ++i)
      p[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i * 7) % (T_ + 3));
    return {random_tensor({T_, H_, D_}, 3, -1, 1, dtype_), int_tensor(p),
            rope_table(T_ + 3, rope_inv_freq(D_, 500000.0, Llama3RopeScaling{}))};
  }
  std::vector<std::string> output_names() const override { return {"x"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    Tensor x = in[0].to(dtype_ == DType::F32 ? DType::F32 : DType::F64);
    ref::rope(x, in[1], in[2], layout_, inverse_);
    return {x};
  }
  bool has_cpu() const override { return dtype_ != DType::F32; }
  std::vector<Tensor> cpu(const std::vector<Tensor>& in) const override {
    Tensor x = in[0].clone();
    ref::rope(x, in[1], in[2], layout_, inverse_);
    return {x};
  }
  // Same f32 factors on both sides; the GPU rounds each product-sum in f32: |error| <= ~2 ulp of |x| <= 1. f16:
  // f16_storage_tolerance, floor 1e-2 (a rotated component may cancel to ~0).
  Tolerance tolerance(std::size_t) const override {
    if (dtype_ == DType::F16) return f16_storage_tolerance(1e-2);
    Tolerance t;
    t.max_abs = 5e-7;
    return t;
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto x = run.up(in[0], "x"), pos = run.up(in[1], "positions"), table = run.up(in[2], "table");
    ops::rope(run.seq, x, pos, table, layout_, inverse_);
    return {x};
  }
#endif
  // A rotation is exact to f64 rounding: central differences of a linear loss err by ~1e-16 |L| / h.
  bool has_gradcheck() const override { return dtype_ == DType::F32 && T_ * H_ * D_ <= 1024; }
  std::vector<Tensor> gradcheck_inputs() const override {
    auto in = inputs();
    in.push_back(random_tensor({T_, H_, D_}, 4));  // w, the upstream gradient
    return in;
  }
  double loss(const std::vector<Tensor>& in) const override {
    Tensor x = in[0].clone();
    ref::rope(x, in[1], in[2].to(DType::F32), layout_, inverse_);  // the table is f32 data (widened by gradcheck)
    return dot(x, in[3]);
  }
  std::vector<Tensor> gradient(const std::vector<Tensor>& in) const override {
    Tensor dx = in[3].clone();
    ref::rope(dx, in[1], in[2].to(DType::F32), layout_, !inverse_);
    return {dx, Tensor(), Tensor(), Tensor()};  // positions, table and w are not differentiated
  }
  GradTolerance grad_tolerance() const override { return {1e-8}; }
  // Per pair: 4 multiplies, 2 adds. Bytes: x read and written, one (cos, sin) table row and a position per token.
  double flops() const override { return 3.0 * static_cast<double>(T_ * H_ * D_); }
  double bytes() const override { return 4.0 * static_cast<double>(2 * T_ * H_ * D_ + T_ * D_ + T_); }

 private:
  std::int64_t T_, H_, D_;
  RopeLayout layout_;
  bool inverse_;
  DType dtype_;
};

std::vector<OpCasePtr> rope_cases() {
  std::vector<OpCasePtr> v;
  for (auto [T, H, D] : {std::array<std::int64_t, 3>{1, 1, 2}, std::array<std::int64_t, 3>{7, 8, 8},
                         std::array<std::int64_t, 3>{33, 3, 64}, std::array<std::int64_t, 3>{5, 4, 12}})
    for (auto layout : {RopeLayout::Interleaved, RopeLayout::RotateHalf})
      for (bool inverse : {false, true}) v.push_back(std::make_shared<RopeCase>(T, H, D, layout, inverse));
  for (auto layout : {RopeLayout::Interleaved, RopeLayout::RotateHalf})
    for (bool inverse : {false, true}) v.push_back(std::make_shared<RopeCase>(33, 3, 64, layout, inverse, DType::F16));
  return v;
}

POCKETLORA_OP_CASES(Rope, rope_cases)

#if POCKETLORA_HAS_VULKAN
TEST_F(GpuTest, RopeRejectsBadShapes) {
  auto x = ops::allocate(arena(), {4, 2, 7}, DType::F32, "x");
  auto pos = ops::allocate(arena(), {4}, DType::I32, "pos");
  auto tab = ops::allocate(arena(), {8, 3, 2}, DType::F32, "tab");
  vk::Sequence seq(dev());
  EXPECT_THROW(ops::rope(seq, x, pos, tab, RopeLayout::RotateHalf), ShapeError);
}
#endif

}  // namespace
