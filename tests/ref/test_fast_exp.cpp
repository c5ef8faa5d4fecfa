// host/ref/fast_exp.h against libm's double exp over the range the CPU kernels feed it (softmax arguments <= 0,
// and a margin above), and its clamps.
#include <gtest/gtest.h>

#include <cmath>

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
  float v[5] = {-1.0f, 0.0f, 0.5f, 2.0f, -20.0f};
  ref::exp_f32_inplace(v, 5);
  EXPECT_NEAR(v[3], std::exp(2.0), 3e-7 * std::exp(2.0));
  EXPECT_NEAR(v[4], std::exp(-20.0), 3e-7 * std::exp(-20.0));
}
