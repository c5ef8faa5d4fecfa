// SwiGLU and residual add: GPU vs reference (reference checks: tests/ref/test_swiglu_ref.cpp).
#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ops/swiglu.h"
#include "host/ref/swiglu.h"
#include "runtime/command.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

// Element-wise f32 with exp(): GPU exp is accurate to a few ulp: max_rel 1e-5 against max(|ref|, 1e-3).
Tolerance tol() {
  Tolerance t;
  t.max_rel = 1e-5;
  t.rel_floor = 1e-3;
  return t;
}

TEST_F(GpuTest, SwigluMatchesReference) {
  for (auto shape : {Shape{1, 1}, Shape{7, 45}, Shape{33, 300}, Shape{3, 5, 17}}) {
    Tensor g = random_tensor(shape, 1, -6, 6), u = random_tensor(shape, 2), dh = random_tensor(shape, 3);
    Tensor h = Tensor::zeros(shape), dg = Tensor::zeros(shape), du = Tensor::zeros(shape);
    ref::swiglu(g, u, h);
    ref::swiglu_backward(g, u, dh, dg, du);
    auto G = up(g), U = up(u), DH = up(dh), H = up(Tensor::zeros(shape)), DG = up(Tensor::zeros(shape)),
         DU = up(Tensor::zeros(shape));
    vk::Sequence seq(dev());
    ops::swiglu(seq, G, U, H);
    ops::swiglu_backward(seq, G, U, DH, DG, DU);
    seq.submit();
    EXPECT_TRUE(within(down(H), h, tol())) << shape_str(shape);
    EXPECT_TRUE(within(down(DG), dg, tol())) << shape_str(shape);
    EXPECT_TRUE(within(down(DU), du, tol())) << shape_str(shape);
  }
}

TEST_F(GpuTest, ResidualAddInPlaceAndOutOfPlace) {
  Tensor a = random_tensor({13, 29}, 1), b = random_tensor({13, 29}, 2);
  Tensor want = Tensor::zeros({13, 29});
  ref::add(a, b, want, 0.5f);
  auto A = up(a), B = up(b), Y = up(Tensor::zeros({13, 29}));
  vk::Sequence seq(dev());
  ops::add(seq, A, B, Y, 0.5f);
  ops::add(seq, A, B, A, 0.5f);  // in place: A += 0.5 B
  seq.submit();
  EXPECT_TRUE(within(down(Y), want, tol()));
  EXPECT_TRUE(within(down(A), want, tol()));
  auto C = ops::allocate(arena(), {13, 28}, DType::F32, "c");
  EXPECT_THROW(ops::add(seq, A, C, A), ShapeError);
}

}  // namespace
