#if POCKETLORA_HAS_VULKAN  // (not yet ported to op cases: tests/harness/op_case.h)
// LoRA forward/backward (PEFT semantics) on the GPU vs the reference; Philox dropout mask identical on CPU and
// GPU and with the right keep rate (reference backward and Philox known answer: tests/ref/test_lora_ref.cpp).
#include <cmath>

#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ops/lora.h"
#include "host/ref/lora.h"
#include "runtime/command.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

struct LoraCase {
  std::int64_t M, K, N, r;
  float dropout;
};

class Lora : public GpuTest, public ::testing::WithParamInterface<LoraCase> {};

TEST_P(Lora, ForwardBackwardMatchReference) {
  const auto c = GetParam();
  LoraOptions opt;
  opt.scale = lora_scale(16.0f, c.r, false);
  opt.dropout = c.dropout;
  opt.seed = 0x1234567890abcdefull;
  opt.stream = 7;
  opt.accumulate_grads = true;
  Tensor x = random_tensor({c.M, c.K}, 1), a = random_tensor({c.r, c.K}, 2, -0.2f, 0.2f),
         b = random_tensor({c.N, c.r}, 3, -0.2f, 0.2f), y0 = random_tensor({c.M, c.N}, 4),
         dy = random_tensor({c.M, c.N}, 5), dx0 = random_tensor({c.M, c.K}, 6), da0 = random_tensor({c.r, c.K}, 7),
         db0 = random_tensor({c.N, c.r}, 8);
  Tensor y = y0.clone(), t = Tensor::zeros({c.M, c.r}), dx = dx0.clone(), da = da0.clone(), db = db0.clone();
  ref::lora_forward(x, a, b, y, t, opt);
  ref::lora_backward(x, a, b, t, dy, dx, da, db, opt);

  vk::Arena step(dev(), vk::Lifetime::Step, "lora step");
  auto X = up(x), A = up(a), B = up(b), Y = up(y0), T = up(Tensor::zeros({c.M, c.r})), DY = up(dy), DX = up(dx0),
       DA = up(da0), DB = up(db0);
  vk::Sequence seq(dev());
  ops::lora_forward(seq, step, X, A, B, Y, T, opt);
  ops::lora_backward(seq, step, X, A, B, T, DY, DX, DA, DB, opt);
  seq.submit();
  // f32 GEMM chains vs f64: relative 1e-5 against the scale of each result (sqrt of its reduction length times
  // the operand magnitudes; a floor of sqrt(len) * 0.1 keeps near-zero sums from dominating).
  auto tol = [](std::int64_t len) {
    Tolerance tl;
    tl.max_rel = 1e-5;
    tl.rel_floor = std::sqrt(static_cast<double>(len)) * 0.1;
    return tl;
  };
  EXPECT_TRUE(within(down(T), t, tol(c.K))) << "T";
  EXPECT_TRUE(within(down(Y), y, tol(c.r))) << "Y";
  EXPECT_TRUE(within(down(DB), db, tol(c.M))) << "dB";
  EXPECT_TRUE(within(down(DA), da, tol(c.M))) << "dA";
  EXPECT_TRUE(within(down(DX), dx, tol(c.N))) << "dX";
}

INSTANTIATE_TEST_SUITE_P(Cases, Lora,
                         ::testing::Values(LoraCase{1, 17, 9, 1, 0.0f}, LoraCase{7, 64, 33, 8, 0.0f},
                                           LoraCase{33, 130, 70, 16, 0.1f}, LoraCase{16, 96, 40, 64, 0.05f},
                                           LoraCase{5, 200, 128, 128, 0.0f}));

TEST_F(GpuTest, LoraDropoutMaskIsBitIdenticalToCpuAndKeepsOneMinusP) {
  const std::int64_t n = 50000;
  Tensor ones = Tensor::zeros({n});
  for (std::int64_t i = 0; i < n; ++i) ones.data<float>()[i] = 1.0f;
  LoraOptions opt;
  opt.dropout = 0.25f;
  opt.seed = 42;
  opt.stream = 3;
  Tensor want = lora_dropout_ref(ones, opt);
  auto in = up(ones), out = up(Tensor::zeros({n}));
  vk::Sequence seq(dev());
  ops::lora_dropout(seq, in, out, opt, false);
  seq.submit();
  Tensor got = down(out);
  ASSERT_EQ(std::memcmp(got.raw(), want.raw(), got.nbytes()), 0);
  std::int64_t kept = 0;
  for (std::int64_t i = 0; i < n; ++i) kept += got.data<float>()[i] != 0.0f;
  // Binomial(n, 0.75): standard deviation sqrt(n * 0.75 * 0.25) ~ 97; allow 5 sigma.
  EXPECT_NEAR(static_cast<double>(kept), 0.75 * n, 5 * std::sqrt(n * 0.75 * 0.25));
  EXPECT_EQ(got.data<float>()[0] == 0.0f ? 0.0f : got.data<float>()[0], want.data<float>()[0]);
  // A different stream gives a different mask.
  opt.stream = 4;
  Tensor other = lora_dropout_ref(ones, opt);
  EXPECT_NE(std::memcmp(other.raw(), want.raw(), want.nbytes()), 0);
}

TEST_F(GpuTest, LoraRejectsBadShapes) {
  auto x = ops::allocate(arena(), {4, 8}, DType::F32, "x"), a = ops::allocate(arena(), {2, 7}, DType::F32, "a");
  auto b = ops::allocate(arena(), {5, 2}, DType::F32, "b"), y = ops::allocate(arena(), {4, 5}, DType::F32, "y");
  auto t = ops::allocate(arena(), {4, 2}, DType::F32, "t");
  vk::Sequence seq(dev());
  try {
    ops::lora_forward(seq, arena(), x, a, b, y, t, {});
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("A [2, 7]"), std::string::npos) << e.what();
  }
  auto a0 = ops::allocate(arena(), {0, 8}, DType::F32, "a0");
  EXPECT_THROW(ops::lora_forward(seq, arena(), x, a0, b, y, t, {}), ShapeError);  // rank 0
}

}  // namespace
#endif  // POCKETLORA_HAS_VULKAN
