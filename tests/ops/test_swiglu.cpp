// SwiGLU (forward + backward) and the residual add as op cases (tests/harness/op_case.h): GPU vs reference,
// the reference backward vs finite differences, perf rows. Hand-computed reference values:
// tests/ref/test_swiglu_ref.cpp.
#include "harness/op_case.h"
#include "host/ref/swiglu.h"

#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/core/error.h"
#include "host/ops/swiglu.h"
#endif

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

// Element-wise f32 with exp(): GPU exp is accurate to a few ulp: max_rel 1e-5 against max(|ref|, 1e-3).
Tolerance elementwise_tol() {
  Tolerance t;
  t.max_rel = 1e-5;
  t.rel_floor = 1e-3;
  return t;
}

// h = silu(g) * u and its backward (dg, du for an upstream dh). Gradient check: L = sum(h .* dh).
class SwigluCase : public OpCase {
 public:
  explicit SwigluCase(Shape shape) : shape_(std::move(shape)) { name = "swiglu/" + shape_str(shape_); }
  std::vector<Tensor> inputs() const override {
    return {random_tensor(shape_, 1, -6, 6), random_tensor(shape_, 2), random_tensor(shape_, 3)};
  }
  std::vector<std::string> output_names() const override { return {"h", "dg", "du"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    Tensor h = Tensor::zeros(shape_), dg = Tensor::zeros(shape_), du = Tensor::zeros(shape_);
    ref::swiglu(in[0], in[1], h);
    ref::swiglu_backward(in[0], in[1], in[2], dg, du);
    return {h, dg, du};
  }
  Tolerance tolerance(std::size_t) const override { return elementwise_tol(); }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto g = run.up(in[0]), u = run.up(in[1]), dh = run.up(in[2]);
    auto h = run.zeros(shape_, DType::F32), dg = run.zeros(shape_, DType::F32), du = run.zeros(shape_, DType::F32);
    ops::swiglu(run.seq, g, u, h);
    ops::swiglu_backward(run.seq, g, u, dh, dg, du);
    return {h, dg, du};
  }
#endif
  // Small shapes only: the central-difference rounding error grows with the loss's magnitude (~ eps |L| / h).
  bool has_gradcheck() const override { return shape_numel(shape_) <= 1024; }
  double loss(const std::vector<Tensor>& in) const override {
    Tensor h = Tensor::zeros(shape_, DType::F64);
    ref::swiglu(in[0], in[1], h);
    return dot(h, in[2]);
  }
  std::vector<Tensor> gradient(const std::vector<Tensor>& in) const override {
    Tensor dg = Tensor::zeros(shape_, DType::F64), du = Tensor::zeros(shape_, DType::F64);
    ref::swiglu_backward(in[0], in[1], in[2], dg, du);
    return {dg, du, Tensor()};  // dh is the loss weight, not differentiated
  }
  GradTolerance grad_tolerance() const override { return {1e-8}; }
  double flops() const override { return 12.0 * static_cast<double>(shape_numel(shape_)); }
  double bytes() const override { return 6.0 * 4 * static_cast<double>(shape_numel(shape_)); }

 private:
  Shape shape_;
};

// y = a + alpha * b, out of place and in place (a += alpha * b). Linear: no gradient check.
class AddCase : public OpCase {
 public:
  AddCase(Shape shape, float alpha) : shape_(std::move(shape)), alpha_(alpha) {
    name = "add/" + shape_str(shape_) + "_alpha" + std::to_string(static_cast<int>(alpha * 100));
  }
  std::vector<Tensor> inputs() const override { return {random_tensor(shape_, 1), random_tensor(shape_, 2)}; }
  std::vector<std::string> output_names() const override { return {"y", "a_in_place"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    Tensor y = Tensor::zeros(shape_);
    ref::add(in[0], in[1], y, alpha_);
    return {y, y};
  }
  Tolerance tolerance(std::size_t) const override { return elementwise_tol(); }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto a = run.up(in[0]), b = run.up(in[1]), y = run.zeros(shape_, DType::F32);
    ops::add(run.seq, a, b, y, alpha_);
    ops::add(run.seq, a, b, a, alpha_);  // in place, after the out-of-place add read a
    return {y, a};
  }
#endif
  double flops() const override { return 4.0 * static_cast<double>(shape_numel(shape_)); }
  double bytes() const override { return 6.0 * 4 * static_cast<double>(shape_numel(shape_)); }

 private:
  Shape shape_;
  float alpha_;
};

std::vector<OpCasePtr> swiglu_cases() {
  std::vector<OpCasePtr> v;
  for (auto shape : {Shape{1, 1}, Shape{7, 45}, Shape{33, 300}, Shape{3, 5, 17}, Shape{4, 9}})
    v.push_back(std::make_shared<SwigluCase>(shape));
  for (auto alpha : {1.0f, 0.5f, -0.5f}) v.push_back(std::make_shared<AddCase>(Shape{13, 29}, alpha));
  return v;
}

POCKETLORA_OP_CASES(Swiglu, swiglu_cases)

#if POCKETLORA_HAS_VULKAN
TEST_F(GpuTest, AddRejectsMismatchedShapes) {
  auto a = ops::allocate(arena(), {13, 29}, DType::F32, "a");
  auto c = ops::allocate(arena(), {13, 28}, DType::F32, "c");
  vk::Sequence seq(dev());
  EXPECT_THROW(ops::add(seq, a, c, a), ShapeError);
}
#endif

}  // namespace
