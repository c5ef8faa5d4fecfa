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

// h = silu(g) * u and its backward (dg, du for an upstream dh). Gradient check: L = sum(h .* dh). f16 storage (every
// operand f16): the reference in f64 on the same f16 inputs, the CPU backend at f16 too (cpu()); tolerance
// f16_storage_tolerance with the f32 case's floor raised to 1e-2 (dg cancels to ~0 near g = -1.28; f32 math
// errors ~1e-7 of the O(1) terms stay well inside 1e-3 of that floor).
class SwigluCase : public OpCase {
 public:
  explicit SwigluCase(Shape shape, DType dtype = DType::F32) : shape_(std::move(shape)), dtype_(dtype) {
    name = "swiglu/" + shape_str(shape_) + (dtype == DType::F16 ? "_f16" : "");
  }
  std::vector<Tensor> inputs() const override {
    return {random_tensor(shape_, 1, -6, 6, dtype_), random_tensor(shape_, 2, -1, 1, dtype_),
            random_tensor(shape_, 3, -1, 1, dtype_)};
  }
  std::vector<std::string> output_names() const override { return {"h", "dg", "du"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    return run_ref(in, dtype_ == DType::F32 ? DType::F32 : DType::F64);
  }
  bool has_cpu() const override { return dtype_ != DType::F32; }
  std::vector<Tensor> cpu(const std::vector<Tensor>& in) const override { return run_ref(in, dtype_); }
  Tolerance tolerance(std::size_t) const override {
    return dtype_ == DType::F16 ? f16_storage_tolerance(1e-2) : elementwise_tol();
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto g = run.up(in[0]), u = run.up(in[1]), dh = run.up(in[2]);
    auto h = run.zeros(shape_, dtype_), dg = run.zeros(shape_, dtype_), du = run.zeros(shape_, dtype_);
    ops::swiglu(run.seq, g, u, h);
    ops::swiglu_backward(run.seq, g, u, dh, dg, du);
    return {h, dg, du};
  }
#endif
  // Small shapes only: the central-difference rounding error grows with the loss's magnitude (~ eps |L| / h).
  bool has_gradcheck() const override { return dtype_ == DType::F32 && shape_numel(shape_) <= 1024; }
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
  double bytes() const override {
    return 6.0 * static_cast<double>(dtype_size(dtype_)) * static_cast<double>(shape_numel(shape_));
  }

 private:
  std::vector<Tensor> run_ref(const std::vector<Tensor>& in, DType out) const {
    Tensor h = Tensor::zeros(shape_, out), dg = Tensor::zeros(shape_, out), du = Tensor::zeros(shape_, out);
    ref::swiglu(in[0], in[1], h);
    ref::swiglu_backward(in[0], in[1], in[2], dg, du);
    return {h, dg, du};
  }
  Shape shape_;
  DType dtype_;
};

// y = a + alpha * b, out of place and in place (a += alpha * b). Linear: no gradient check. a, b, y each f32 or
// f16 (the in-place output has a's dtype): with any f16 operand the reference is f64 on the same inputs and the
// CPU backend runs at the case's dtypes (cpu()); an f16 output: f16_storage_tolerance (floor 1e-2: a + alpha b
// of inputs in [-1, 1] cancels to ~0), an f32 one: the f32 bound (the sum of two f16 values is computed in f32).
class AddCase : public OpCase {
 public:
  AddCase(Shape shape, float alpha, DType a = DType::F32, DType b = DType::F32, DType y = DType::F32)
      : shape_(std::move(shape)), alpha_(alpha), a_(a), b_(b), y_(y) {
    name = "add/" + shape_str(shape_) + "_alpha" + std::to_string(static_cast<int>(alpha * 100));
    if (!all_f32()) name += std::string("_a") + dtype_name(a) + "_b" + dtype_name(b) + "_y" + dtype_name(y);
  }
  std::vector<Tensor> inputs() const override {
    return {random_tensor(shape_, 1, -1, 1, a_), random_tensor(shape_, 2, -1, 1, b_)};
  }
  std::vector<std::string> output_names() const override { return {"y", "a_in_place"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    const DType out = all_f32() ? DType::F32 : DType::F64;
    return run_ref(in, out, out);
  }
  bool has_cpu() const override { return !all_f32(); }
  std::vector<Tensor> cpu(const std::vector<Tensor>& in) const override { return run_ref(in, y_, a_); }
  Tolerance tolerance(std::size_t i) const override {
    return (i == 0 ? y_ : a_) == DType::F16 ? f16_storage_tolerance(1e-2) : elementwise_tol();
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto a = run.up(in[0]), b = run.up(in[1]), y = run.zeros(shape_, y_);
    ops::add(run.seq, a, b, y, alpha_);
    ops::add(run.seq, a, b, a, alpha_);  // in place, after the out-of-place add read a
    return {y, a};
  }
#endif
  double flops() const override { return 4.0 * static_cast<double>(shape_numel(shape_)); }
  double bytes() const override { return 6.0 * 4 * static_cast<double>(shape_numel(shape_)); }

 private:
  bool all_f32() const { return a_ == DType::F32 && b_ == DType::F32 && y_ == DType::F32; }
  // y = a + alpha b stored as y_dtype, and a + alpha b stored as a_dtype (the in-place result).
  std::vector<Tensor> run_ref(const std::vector<Tensor>& in, DType y_dtype, DType a_dtype) const {
    Tensor y = Tensor::zeros(shape_, y_dtype), a = in[0].to(a_dtype);
    ref::add(in[0], in[1], y, alpha_);
    ref::add(a, in[1], a, alpha_);
    return {y, a};
  }
  Shape shape_;
  float alpha_;
  DType a_, b_, y_;
};

std::vector<OpCasePtr> swiglu_cases() {
  std::vector<OpCasePtr> v;
  for (auto shape : {Shape{1, 1}, Shape{7, 45}, Shape{33, 300}, Shape{3, 5, 17}, Shape{4, 9}})
    v.push_back(std::make_shared<SwigluCase>(shape));
  for (auto alpha : {1.0f, 0.5f, -0.5f}) v.push_back(std::make_shared<AddCase>(Shape{13, 29}, alpha));
  for (auto shape : {Shape{7, 45}, Shape{3, 5, 17}}) v.push_back(std::make_shared<SwigluCase>(shape, DType::F16));
  // The residual stream f32 plus an f16 projection output; all f16; f16 a plus f32 b into f16.
  constexpr DType f32 = DType::F32, f16 = DType::F16;
  v.push_back(std::make_shared<AddCase>(Shape{13, 29}, 1.0f, f32, f16, f32));
  v.push_back(std::make_shared<AddCase>(Shape{13, 29}, 0.5f, f16, f16, f16));
  v.push_back(std::make_shared<AddCase>(Shape{13, 29}, -0.5f, f16, f32, f16));
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
