// CPU NF4 quantization (bitsandbytes CUDA semantics): hand-computed cases, the dynamic map, the nested 8-bit
// search, error bounds, NaN/Inf rejection.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "harness/op_harness.h"
#include "host/ref/nf4_quantize.h"
#include "host/util/error.h"
#include "shaders/common/nf4_codebook.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

int code_at(const Nf4Quantized& q, std::size_t i) { return i % 2 == 0 ? q.codes[i / 2] >> 4 : q.codes[i / 2] & 0xf; }

TEST(Nf4Codebook, ThresholdsAreTheCodebookMidpoints) {
  // The CUDA tree's literals are the midpoints of adjacent codebook values (to ~1e-7: they were generated in
  // float64 from the same normal quantiles and printed).
  for (int t = 0; t < 15; ++t)
    EXPECT_NEAR(kNf4Thresholds[t], 0.5 * (kNf4Codebook[t] + kNf4Codebook[t + 1]), 1e-7) << t;
}

TEST(Nf4QuantizeRef, HandComputedCodesTiesZerosAndPadding) {
  // Block 0: absmax 1 (x/absmax == x): values exactly at each threshold stay below (strict >), one ulp above
  // moves up. Block 1: all zeros -> code 0, absmax 0 (CUDA: 0 * inf = NaN, no threshold exceeded).
  // Block 2: all equal -> every x/absmax == 1 or -1. Last block: 5 elements, odd count -> padded low nibble.
  std::vector<float> x(64 * 3 + 5, 0.0f);
  x[0] = 1.0f;
  for (int t = 0; t < 15; ++t) {
    x[static_cast<std::size_t>(1 + 2 * t)] = kNf4Thresholds[t];
    x[static_cast<std::size_t>(2 + 2 * t)] = std::nextafter(kNf4Thresholds[t], 2.0f);
  }
  for (int i = 128; i < 192; ++i) x[static_cast<std::size_t>(i)] = -0.25f;
  for (int i = 192; i < 197; ++i) x[static_cast<std::size_t>(i)] = 0.5f * static_cast<float>(i - 194);
  auto q = quantize_nf4(x, {197}, false, "hand");
  EXPECT_EQ(code_at(q, 0), 15);
  for (int t = 0; t < 15; ++t) {
    EXPECT_EQ(code_at(q, static_cast<std::size_t>(1 + 2 * t)), t);
    EXPECT_EQ(code_at(q, static_cast<std::size_t>(2 + 2 * t)), t + 1);
  }
  EXPECT_EQ(q.absmax[1], 0.0f);
  for (std::size_t i = 64; i < 128; ++i) EXPECT_EQ(code_at(q, i), 0);
  EXPECT_EQ(q.absmax[2], 0.25f);
  for (std::size_t i = 128; i < 192; ++i) EXPECT_EQ(code_at(q, i), 0);  // -0.25 / 0.25 = -1 -> code 0
  EXPECT_EQ(q.absmax[3], 1.0f);
  EXPECT_EQ(code_at(q, 192), 0);   // -1
  EXPECT_EQ(code_at(q, 194), 7);   // 0
  EXPECT_EQ(code_at(q, 196), 15);  // +1
  ASSERT_EQ(q.codes.size(), 99u);
  EXPECT_EQ(q.codes.back() & 0xf, 0);
  // Dequantization of a zero block is exactly zero (code 0 = -1.0, times absmax 0).
  Tensor w = dequantize_nf4(q);
  EXPECT_EQ(std::fabs(w.data<float>()[100]), 0.0f);
}

TEST(Nf4QuantizeRef, BlocksSpanRowsOfTheFlattenedTensor) {
  // Rows of 172: block 2 covers elements 128..191, i.e. the end of row 0 and the start of row 1.
  Tensor t = random_tensor({3, 172}, 1);
  const float* x = t.data<float>();
  auto q = quantize_nf4({x, 516}, {3, 172}, false, "w");
  float amax = 0;
  for (int i = 128; i < 192; ++i) amax = std::max(amax, std::fabs(x[i]));
  EXPECT_EQ(q.absmax.size(), 9u);
  EXPECT_EQ(q.absmax[2], amax);
}

TEST(Nf4QuantizeRef, DynamicMapMatchesBitsandbytesConstruction) {
  const auto& m = bnb_dynamic_map_signed();
  EXPECT_TRUE(std::is_sorted(m.begin(), m.end()));
  EXPECT_EQ(m[255], 1.0f);
  EXPECT_EQ(m[0], -0.99296875f);  // -(1.0 + (1 - 0.9/64)) / 2: the largest mean of the last decade
  EXPECT_EQ(m[254], 0.99296875f);
  EXPECT_EQ(std::count(m.begin(), m.end(), 0.0f), 1);
  // Symmetric apart from +1.0: m[i] == -m[254 - i].
  for (int i = 0; i < 255; ++i) EXPECT_EQ(m[static_cast<std::size_t>(i)], -m[static_cast<std::size_t>(254 - i)]) << i;
  // Smallest magnitude: 1e-6 scale times the mean of linspace(0.1, 1, 2) = 0.55.
  EXPECT_FLOAT_EQ(m[128], 0.55e-6f);
}

TEST(Nf4QuantizeRef, DoubleQuantErrorBoundsAndRoundTrip) {
  // 600 blocks (3 nested blocks) with absmax spread over a decade.
  Tensor t = random_tensor({300, 128}, 5, -3.0f, 3.0f);
  const float* x = t.data<float>();
  auto single = quantize_nf4({x, static_cast<std::size_t>(t.numel())}, t.shape(), false, "w");
  auto dq = quantize_nf4({x, static_cast<std::size_t>(t.numel())}, t.shape(), true, "w");
  EXPECT_EQ(single.codes, dq.codes);  // the second level never changes the 4-bit codes
  ASSERT_EQ(dq.dq.nested_absmax.size(), 3u);
  double mean = 0;
  for (float a : single.absmax) mean += a;
  EXPECT_NEAR(dq.dq.offset, mean / 600.0, 1e-6);
  // 8-bit dynamic map: the widest gap of the map in [-1, 1] is 0.9/64 = 0.0140625, so the absmax error is at
  // most half of that times the nested scale (plus fp32 rounding).
  const auto eff = dq.effective_absmax();
  for (std::size_t b = 0; b < eff.size(); ++b)
    ASSERT_LE(std::fabs(eff[b] - single.absmax[b]), 0.0140625 / 2 * dq.dq.nested_absmax[b / 256] + 1e-6) << b;
  // Element error: half the largest NF4 gap (-1 -> -0.6962: 0.3038) times absmax, plus the absmax error.
  double max_gap = 0;
  for (int c = 0; c < 15; ++c) max_gap = std::max(max_gap, static_cast<double>(kNf4Codebook[c + 1] - kNf4Codebook[c]));
  EXPECT_NEAR(max_gap, 0.3038072, 1e-6);
  Tensor w1 = dequantize_nf4(single), w2 = dequantize_nf4(dq);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const std::size_t b = static_cast<std::size_t>(i / 64);
    ASSERT_LE(std::fabs(w1.data<float>()[i] - x[i]), 0.5 * max_gap * single.absmax[b] + 1e-6);
    ASSERT_LE(std::fabs(w2.data<float>()[i] - x[i]),
              0.5 * max_gap * single.absmax[b] + std::fabs(eff[b] - single.absmax[b]) + 1e-6);
  }
}

TEST(Nf4QuantizeRef, NanOrInfRejectedNamingTensorAndElement) {
  std::vector<float> x(100, 0.5f);
  x[42] = std::numeric_limits<float>::infinity();
  try {
    quantize_nf4(x, {10, 10}, true, "model.layers.0.self_attn.q_proj.weight");
    FAIL();
  } catch (const NumericError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("q_proj.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("element 42"), std::string::npos) << m;
    EXPECT_NE(m.find("Inf"), std::string::npos) << m;
  }
  x[42] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(quantize_nf4(x, {10, 10}, false, "w"), NumericError);
  EXPECT_THROW(quantize_nf4(x, {10, 11}, false, "w"), ShapeError);
}

}  // namespace
