// RoPE: both layouts, inverse, Llama 3 frequency scaling against hand-computed values, GPU vs reference.
#include <cmath>
#include <numbers>

#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/ops/rope.h"
#include "host/util/error.h"
#include "runtime/command.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(RopeFrequencies, PlainAndLlama3ScalingByHand) {
  auto f = rope_inv_freq(8, 10000.0);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_DOUBLE_EQ(f[0], 1.0);
  EXPECT_NEAR(f[1], 0.1, 1e-15);  // 10000^(-2/8)
  EXPECT_NEAR(f[3], 1e-3, 1e-15);
  // Llama 3 scaling (factor 8, low 1, high 4, original 8192), theta 500000, d = 128. Wavelengths:
  // high-frequency (wavelen < 2048) unchanged, low-frequency (wavelen > 8192) divided by 8, medium smoothed.
  Llama3RopeScaling sc;
  auto base = rope_inv_freq(128, 500000.0), scaled = rope_inv_freq(128, 500000.0, sc);
  int hi = 0, lo = 0, mid = 0;
  for (std::size_t i = 0; i < base.size(); ++i) {
    const double wl = 2 * std::numbers::pi / base[i];
    if (wl < 2048) {
      EXPECT_DOUBLE_EQ(scaled[i], base[i]);
      ++hi;
    } else if (wl > 8192) {
      EXPECT_DOUBLE_EQ(scaled[i], base[i] / 8);
      ++lo;
    } else {
      const double s = (8192 / wl - 1) / 3;
      EXPECT_NEAR(scaled[i], (1 - s) * base[i] / 8 + s * base[i], 1e-18);
      ++mid;
    }
  }
  EXPECT_GT(hi, 0);
  EXPECT_GT(lo, 0);
  EXPECT_GT(mid, 0);
  EXPECT_THROW(rope_inv_freq(7, 10000.0), InvalidArgument);
}

TEST(RopeReference, InverseUndoesAndRotationMatchesComplexMultiply) {
  Tensor x = random_tensor({3, 2, 8}, 1), pos = int_tensor({0, 5, 2});
  Tensor table = rope_table(16, rope_inv_freq(8, 10000.0));
  Tensor y = x.clone();
  ref::rope(y, pos, table, RopeLayout::Interleaved);
  // Interleaved pair (x0, x1) at position 5, frequency index 1: (x0 + i x1) * e^{i 5 * 0.1}.
  const float* xp = x.data<float>();
  const float* yp = y.data<float>();
  const std::int64_t base = (1 * 2 + 0) * 8;
  const double a = 5 * 0.1;
  EXPECT_NEAR(yp[base + 2], xp[base + 2] * std::cos(a) - xp[base + 3] * std::sin(a), 1e-6);
  EXPECT_NEAR(yp[base + 3], xp[base + 2] * std::sin(a) + xp[base + 3] * std::cos(a), 1e-6);
  ref::rope(y, pos, table, RopeLayout::Interleaved, /*inverse=*/true);
  Tolerance t;
  t.max_abs = 1e-6;
  EXPECT_TRUE(within(y, x, t));
  // Position 0 is the identity.
  EXPECT_EQ(y.data<float>()[0], x.data<float>()[0]);
}

class Rope : public GpuTest, public ::testing::WithParamInterface<std::array<std::int64_t, 3>> {};

TEST_P(Rope, GpuMatchesReferenceBothLayoutsAndInverse) {
  const auto [T, H, D] = GetParam();
  std::vector<std::int32_t> p(static_cast<std::size_t>(T));
  for (std::int64_t i = 0; i < T; ++i) p[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i * 7) % (T + 3));
  Tensor pos = int_tensor(p);
  Tensor table = rope_table(T + 3, rope_inv_freq(D, 500000.0, Llama3RopeScaling{}));
  auto gpos = up(pos), gtab = up(table);
  for (auto layout : {RopeLayout::Interleaved, RopeLayout::RotateHalf})
    for (bool inverse : {false, true}) {
      Tensor x = random_tensor({T, H, D}, 3);
      Tensor want = x.clone();
      ref::rope(want, pos, table, layout, inverse);
      auto gx = up(x);
      vk::Sequence seq(dev());
      ops::rope(seq, gx, gpos, gtab, layout, inverse);
      seq.submit();
      // Same f32 factors on both sides; the GPU rounds each product-sum in f32: |error| <= ~2 ulp of |x| <= 1.
      Tolerance t;
      t.max_abs = 5e-7;
      EXPECT_TRUE(within(down(gx), want, t)) << "layout " << static_cast<int>(layout) << " inverse " << inverse;
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Rope,
                         ::testing::Values(std::array<std::int64_t, 3>{1, 1, 2}, std::array<std::int64_t, 3>{7, 8, 8},
                                           std::array<std::int64_t, 3>{33, 3, 64},
                                           std::array<std::int64_t, 3>{5, 4, 12}));

TEST_F(GpuTest, RopeRejectsBadShapes) {
  auto x = ops::allocate(arena(), {4, 2, 7}, DType::F32, "x");
  auto pos = ops::allocate(arena(), {4}, DType::I32, "pos");
  auto tab = ops::allocate(arena(), {8, 3, 2}, DType::F32, "tab");
  vk::Sequence seq(dev());
  EXPECT_THROW(ops::rope(seq, x, pos, tab, RopeLayout::RotateHalf), ShapeError);
}

}  // namespace
