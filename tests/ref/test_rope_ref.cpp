// RoPE frequencies (plain and Llama 3 scaling) and the rotation reference (host/ref/rope.h) against hand-computed
// values; runs in CPU-only builds too. The GPU kernels are compared with it in tests/ops/test_rope.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ref/rope.h"

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

}  // namespace
