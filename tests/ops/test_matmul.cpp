#if POCKETLORA_HAS_VULKAN  // (not yet ported to op cases: tests/harness/op_case.h)
// matmul: C = alpha * A * B^T, GPU vs Eigen reference (reference backward check: tests/ref/test_matmul_ref.cpp).
#include <cmath>

#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ops/matmul.h"
#include "host/ref/eigen_view.h"
#include "host/ref/matmul.h"
#include "runtime/command.h"
#include "runtime/error.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

// f32: the GPU sums K products with fma in order, Eigen in blocks; both are f32 with errors ~ sqrt(K) * 2^-24
// of the result's magnitude (~sqrt(K)/3 for inputs in [-1, 1]). Relative error is taken against
// max(|want|, sqrt(K)) so cancellation to ~0 does not count as a relative blow-up: limit 1e-5.
// f16: inputs are the same f16 values on both sides; the output is rounded to f16 once (2^-11 relative),
// so max_rel 1e-3 and NMSE 1e-6 (DESIGN.md: fp16 paths <= 2e-3 NMSE-style).
LegacyOpCase make_case(const char* name, std::int64_t M, std::int64_t N, std::int64_t K, DType dt) {
  LegacyOpCase c;
  c.name = std::string("matmul/") + name + (dt == DType::F16 ? "_f16" : "_f32");
  c.dims = {M, N, K};
  c.dtype = dt;
  c.tol.rel_floor = std::sqrt(static_cast<double>(K));
  if (dt == DType::F32) {
    c.tol.max_rel = 1e-5;
    c.tol.nmse = 1e-10;
  } else {
    c.tol.max_rel = 1e-3;
    c.tol.nmse = 1e-6;
  }
  c.flops = 2.0 * M * N * K;
  c.bytes = static_cast<double>((M * K + N * K + M * N) * dtype_size(dt));
  return c;
}

std::vector<LegacyOpCase> matmul_cases() {
  std::vector<LegacyOpCase> v;
  for (DType dt : {DType::F32, DType::F16}) {
    v.push_back(make_case("1x1x1", 1, 1, 1, dt));
    v.push_back(make_case("gemv", 1, 67, 129, dt));
    v.push_back(make_case("ragged", 7, 13, 5, dt));
    v.push_back(make_case("odd_tiles", 33, 130, 67, dt));
    v.push_back(make_case("square64", 64, 64, 64, dt));
    v.push_back(make_case("tall", 128, 96, 256, dt));
  }
  return v;
}

class Matmul : public GpuTest, public ::testing::WithParamInterface<LegacyOpCase> {};

TEST_P(Matmul, GpuMatchesReference) {
  const LegacyOpCase& c = GetParam();
  const auto M = c.dims[0], N = c.dims[1], K = c.dims[2];
  Tensor a = random_tensor({M, K}, 1, -1, 1, c.dtype);
  Tensor b = random_tensor({N, K}, 2, -1, 1, c.dtype);
  for (bool accumulate : {false, true}) {
    MatmulOptions opt{accumulate ? 0.5f : 1.0f, accumulate};
    Tensor c0 = random_tensor({M, N}, 3, -1, 1, c.dtype);
    Tensor want = c0.clone();
    ref::matmul(a, b, want, opt);

    auto da = up(a), db = up(b), dc = up(c0);
    vk::Sequence seq(dev(), bench_mode());
    ops::matmul(seq, da, db, dc, opt);
    seq.submit();
    Tensor got = down(dc);
    EXPECT_TRUE(within(got, want, c.tol)) << c << (accumulate ? " accumulate" : "");
    if (bench_mode() && !seq.timings().empty()) {
      const double ms = seq.timings()[0].ms;
      std::printf("[bench] %s: %.3f ms, %.2f GFLOPS, %.2f GB/s\n", c.name.c_str(), ms, c.flops / ms * 1e-6,
                  c.bytes / ms * 1e-6);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Matmul, ::testing::ValuesIn(matmul_cases()),
                         [](const ::testing::TestParamInfo<LegacyOpCase>& p) { return p.param.name.substr(7); });

TEST_F(GpuTest, MatmulResubmitAccumulates) {
  // A recorded sequence is replayed: with accumulate, C grows by A*B^T on every submit.
  Tensor a = random_tensor({5, 9}, 4), b = random_tensor({6, 9}, 5);
  Tensor once = Tensor::zeros({5, 6});
  ref::matmul(a, b, once);
  auto da = up(a), db = up(b), dc = up(Tensor::zeros({5, 6}));
  vk::Sequence seq(dev());
  ops::matmul(seq, da, db, dc, {1.0f, true});
  for (int i = 0; i < 3; ++i) seq.submit();
  Tensor got = down(dc);
  Tensor want = once.clone();
  as_matrix(want) *= 3.0f;
  Tolerance tol;
  tol.max_rel = 1e-5;
  tol.rel_floor = 1.0;
  EXPECT_TRUE(within(got, want, tol));
}

TEST_F(GpuTest, MatmulRejectsBadShapesNamingBoth) {
  auto a = ops::allocate(arena(), {4, 8}, DType::F32, "a");
  auto b = ops::allocate(arena(), {3, 7}, DType::F32, "b");
  auto c = ops::allocate(arena(), {4, 3}, DType::F32, "c");
  vk::Sequence seq(dev());
  try {
    ops::matmul(seq, a, b, c);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("[4, 8]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[3, 7]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("ops::matmul"), std::string::npos) << msg;
  }
  auto h = ops::allocate(arena(), {3, 8}, DType::F16, "h");
  EXPECT_THROW(ops::matmul(seq, a, h, c), ShapeError);  // mixed dtypes
}

}  // namespace

namespace {
// Transposed operands (the LoRA / linear-gradient forms): same tolerance as the f32 cases above.
TEST_F(GpuTest, MatmulTransposedOperandsMatchReference) {
  for (auto [M, N, K] : {std::array<std::int64_t, 3>{7, 13, 5}, {33, 9, 70}, {64, 16, 128}}) {
    for (int mode = 1; mode < 4; ++mode) {
      MatmulOptions opt;
      opt.trans_a = mode & 1;
      opt.trans_b = mode & 2;
      opt.alpha = 0.25f;
      Tensor a = opt.trans_a ? random_tensor({K, M}, 40) : random_tensor({M, K}, 40);
      Tensor b = opt.trans_b ? random_tensor({K, N}, 41) : random_tensor({N, K}, 41);
      Tensor want = Tensor::zeros({M, N});
      ref::matmul(a, b, want, opt);
      // Independent check of the reference itself: explicit transposes into the plain form.
      Tensor at = a, bt = b;
      if (opt.trans_a) { at = Tensor::zeros({M, K}); as_matrix(at) = as_matrix(a).transpose(); }
      if (opt.trans_b) { bt = Tensor::zeros({N, K}); as_matrix(bt) = as_matrix(b).transpose(); }
      Tensor plain = Tensor::zeros({M, N});
      ref::matmul(at, bt, plain, {0.25f, false});
      Tolerance tol;
      tol.rel_floor = std::sqrt(static_cast<double>(K));
      tol.max_rel = 1e-5;
      EXPECT_TRUE(within(want, plain, tol));
      auto da = up(a), db = up(b), dc = up(Tensor::zeros({M, N}));
      vk::Sequence seq(dev());
      ops::matmul(seq, da, db, dc, opt);
      seq.submit();
      EXPECT_TRUE(within(down(dc), want, tol)) << "M=" << M << " N=" << N << " K=" << K << " mode=" << mode;
    }
  }
}
}  // namespace

namespace {
TEST_F(GpuTest, MatmulRefusesReductionsAboveTheDeviceLoopLimit) {
  // llvmpipe silently stops a loop after 65535 iterations; the op must refuse instead of returning garbage.
  const auto limit = dev().profile().param("loop_limit");
  if (limit <= 0) GTEST_SKIP() << "profile '" << dev().profile().name() << "' has no loop limit";
  auto a = ops::allocate(arena(), {1, limit + 8}, DType::F32, "a");
  auto c = ops::allocate(arena(), {1, 1}, DType::F32, "c");
  vk::Sequence seq(dev());
  EXPECT_THROW(ops::matmul(seq, a, a, c), DeviceLimitError);
}
}  // namespace
#endif  // POCKETLORA_HAS_VULKAN
