#include <gtest/gtest.h>

#include "host/core/error.h"
#include "host/core/half.h"
#include "host/core/tensor.h"

using namespace pocketlora;

TEST(Tensor, ZerosReshapeSlice) {
  Tensor t = Tensor::zeros({4, 6});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_TRUE(t.is_contiguous());
  t.data<float>()[7] = 3.0f;
  Tensor r = t.reshape({2, 12});
  EXPECT_EQ(r.data<float>()[7], 3.0f);
  Tensor s = t.slice_rows(1, 3);
  EXPECT_EQ(s.dim(0), 2);
  EXPECT_EQ(s.data<float>()[1], 3.0f);
  EXPECT_THROW(t.reshape({5, 5}), ShapeError);
  EXPECT_THROW(t.slice_rows(2, 5), ShapeError);
  EXPECT_THROW(t.data<double>(), ShapeError);
}

TEST(Tensor, DtypeConversionRoundTrips) {
  Tensor t = Tensor::from_vector({1.0f, -2.5f, 65504.0f, 1e-7f}, {4});
  Tensor h = t.to(DType::F16);
  Tensor back = h.to(DType::F32);
  EXPECT_EQ(back.data<float>()[0], 1.0f);
  EXPECT_EQ(back.data<float>()[1], -2.5f);
  EXPECT_EQ(back.data<float>()[2], 65504.0f);
  EXPECT_NEAR(back.data<float>()[3], 1e-7f, 6e-8f);  // f16 subnormal spacing is 2^-24 ~ 6e-8
}

TEST(Half, RoundToNearestEvenAndSpecials) {
  // Every f16 bit pattern survives f16 -> f32 -> f16 exactly (NaNs stay NaN).
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = half_to_float(static_cast<std::uint16_t>(h));
    const std::uint16_t back = float_to_half(f);
    if (f != f) {
      EXPECT_EQ(back & 0x7c00u, 0x7c00u);
      EXPECT_NE(back & 0x3ffu, 0u);
    } else {
      ASSERT_EQ(back, h) << "pattern " << h;
    }
  }
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00u);  // ties to even overflow to Inf
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 2048.0f), 0x3c00u);  // exact tie -> even (1.0)
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80u);
  EXPECT_EQ(bf16_to_float(0x3f80u), 1.0f);
}
