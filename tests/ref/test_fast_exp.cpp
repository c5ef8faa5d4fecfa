// host/ref/fast_exp.h against libm's double exp over the range the CPU kernels feed it (softmax arguments <= 0,
// and a margin above), its clamps and NaN.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "host/ref/cpu_simd.h"
#include "host/ref/fast_exp.h"

using namespace pocketlora;

TEST(FastExp, MatchesLibmWithinF32Rounding) {
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -87.0f + 175.0f * static_cast<float>(i) / 200000.0f;
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(static_cast<double>(ref::exp_f32(x)) - want) / want);
  }
  EXPECT_LT(worst, 3e-7);  // Cephes' bound 2e-7 plus the final f32 rounding
  EXPECT_EQ(ref::exp_f32(0.0f), 1.0f);
}

TEST(FastExp, ClampsOutsideF32Range) {
  EXPECT_GT(ref::exp_f32(-1000.0f), 0.0f);
  EXPECT_LT(ref::exp_f32(-1000.0f), 2e-38f);
  EXPECT_TRUE(std::isfinite(ref::exp_f32(1000.0f)));
  EXPECT_TRUE(std::isnan(ref::exp_f32(std::nanf(""))));  // a NaN score stays visible to the trainer's NaN check
  float v[5] = {-1.0f, 0.0f, 0.5f, 2.0f, -20.0f};
  ref::exp_f32_inplace(v, 5);
  EXPECT_NEAR(v[3], std::exp(2.0), 3e-7 * std::exp(2.0));
  EXPECT_NEAR(v[4], std::exp(-20.0), 3e-7 * std::exp(-20.0));
}

// The array form runs in an AVX2 build where the CPU has it (host/ref/cpu_simd.h): element for element the same
// bits as exp_f32, with and without AVX2, over lengths that leave vector remainders.
TEST(FastExp, ArrayFormIsExpF32BitForBitInEitherBuild) {
  for (const bool avx2 : {true, false}) {
    ref::set_cpu_simd_avx2(avx2);
    for (const std::int64_t n : {1, 7, 8, 9, 31, 515}) {
      std::vector<float> x(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) x[i] = -90.0f + 180.0f * static_cast<float>((i * 7919) % n) / n;
      std::vector<float> y = x;
      ref::exp_f32_inplace(y.data(), n);
      for (std::int64_t i = 0; i < n; ++i)
        ASSERT_EQ(std::bit_cast<std::uint32_t>(y[i]), std::bit_cast<std::uint32_t>(ref::exp_f32(x[i])))
            << "avx2 " << avx2 << ", n " << n << ", x " << x[i];
    }
  }
  ref::set_cpu_simd_avx2(true);
}
