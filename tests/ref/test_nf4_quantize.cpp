// CPU NF4 quantization (bitsandbytes CUDA semantics): hand-computed cases, the dynamic map, the nested 8-bit
// search, error bounds, NaN/Inf rejection.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "common/error_message.h"
#include "common/nf4_bnb_fixture.h"
#include "common/nf4_test_data.h"
#include "host/util/sha256.h"
#include "common/test_data.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/core/nf4_quantize.h"
#include "host/formats/bnb4bit_linear.h"
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

TEST(Nf4Codebook, ExactFloatBitsOfCodebookAndCudaThresholds) {
  // bitsandbytes' NF4 table (functional.py get_4bit_type("nf4"), as saved in every checkpoint's quant_map) and
  // the fp32 literals of the dQuantizeNF4 decision tree (csrc/kernels.cu), bit for bit: a one-ulp change in
  // either moves codes of values near a threshold.
  constexpr std::uint32_t codebook[16] = {0xBF800000, 0xBF3239B1, 0xBF066B30, 0xBECA32A0, 0xBE91A24D, 0xBE3D353F,
                                          0xBDBA7871, 0x00000000, 0x3DA2FAFF, 0x3E24CAE3, 0x3E7C04DD, 0x3EAD033A,
                                          0x3EE1A4B8, 0x3F1007AB, 0x3F3913B3, 0x3F800000};
  constexpr std::uint32_t thresholds[15] = {0xBF591CD8, 0xBF1C5270, 0xBEEB8480, 0xBEADEA76, 0xBE703CEC,
                                            0xBE0D38BC, 0xBD3A7871, 0x3D22FAFF, 0x3DF64862, 0x3E5067E0,
                                            0x3E9582D4, 0x3EC753F9, 0x3F006D04, 0x3F248DAF, 0x3F5C89DA};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(std::bit_cast<std::uint32_t>(kNf4Codebook[i]), codebook[i]) << "code " << i;
  for (int i = 0; i < 15; ++i)
    EXPECT_EQ(std::bit_cast<std::uint32_t>(kNf4Thresholds[i]), thresholds[i]) << "threshold " << i;
}

TEST(Nf4QuantizeRef, DynamicMapIsTheReleasedBitsandbytesTable) {
  // SHA-256 of the nested_quant_map that released bitsandbytes (torch >= 2.0, x86) saves, float32 LE bytes
  // (published with ../shared/data/nf4-bnb). Computing linspace without fused multiply-adds misses 42 entries.
  const auto& m = bnb_dynamic_map_signed();
  EXPECT_EQ(sha256_hex({reinterpret_cast<const std::uint8_t*>(m.data()), sizeof(float) * m.size()}),
            "e732639a65f497b4ad684bb166a4467708255edd5207757de8b8f0c7e1fda89c");
}

TEST(Nf4QuantizeRef, BitsandbytesFixturesByteForByte) {
  // Quantize each reference input on the CPU; every saved tensor and the quant_state JSON must be the bytes
  // bitsandbytes saves, and dequantizing must give dequantize_4bit's output bit for bit.
  POCKETLORA_REQUIRE_DATA(dir, kNf4BnbDir);
  for (const char* name : kNf4BnbCases) {
    SCOPED_TRACE(name);
    const Nf4BnbCase c = load_nf4_bnb_case(dir, name);
    const Nf4Quantized q = quantize_nf4(c.input_values(), c.input.shape(), c.double_quant, name);
    EXPECT_TRUE(same_bytes(q.codes, c.expected_bytes(""))) << "weight";
    EXPECT_TRUE(same_bytes({reinterpret_cast<const std::uint8_t*>(kNf4Codebook), sizeof kNf4Codebook},
                           c.expected_bytes(".quant_map")));
    if (c.double_quant) {
      EXPECT_TRUE(same_bytes(q.dq.absmax_q, c.expected_bytes(".absmax"))) << "absmax codes";
      EXPECT_TRUE(same_bytes(as_bytes_of(q.dq.nested_absmax), c.expected_bytes(".nested_absmax")));
      const auto& m = bnb_dynamic_map_signed();
      EXPECT_TRUE(same_bytes({reinterpret_cast<const std::uint8_t*>(m.data()), sizeof(float) * m.size()},
                             c.expected_bytes(".nested_quant_map")));
    } else {
      EXPECT_EQ(c.expected.find("weight.nested_absmax"), nullptr);
      EXPECT_TRUE(same_bytes(as_bytes_of(q.absmax), c.expected_bytes(".absmax"))) << "f32 absmax";
    }
    const std::string js = bnb4bit_quant_state_json(q, "float32");
    EXPECT_TRUE(same_bytes({reinterpret_cast<const std::uint8_t*>(js.data()), js.size()},
                           c.expected_bytes(".quant_state.bitsandbytes__nf4")))
        << js;
    const Tensor w = dequantize_nf4(q);
    EXPECT_TRUE(same_bytes({static_cast<const std::uint8_t*>(w.raw()), w.nbytes()},
                           {static_cast<const std::uint8_t*>(c.dequant.raw()), c.dequant.nbytes()}))
        << "dequant";
  }
}

TEST(Nf4QuantizeRef, HandComputedCodesTiesZerosAndPadding) {
  // Block 0: absmax 1 (x/absmax == x): +1 and -1 are the extreme codes; values exactly at each threshold stay
  // below (strict >), one ulp above moves up. Block 1: all zeros -> code 0, absmax 0 (CUDA: 0 * inf = NaN, no
  // threshold exceeded). Block 2: all equal -> every x/absmax == 1 or -1. Last block: 5 elements, odd count ->
  // low nibble of 0.0. (The GPU quantizer is held to these bytes by the op case nf4_quantize/hand_thresholds.)
  const std::vector<float> x = nf4_hand_quantize_input();
  ASSERT_EQ(x.size(), 197u);
  auto q = quantize_nf4(x, {197}, false, "hand");
  EXPECT_EQ(code_at(q, 0), 15);  // +absmax -> 1.0
  EXPECT_EQ(code_at(q, 31), 0);  // -absmax -> -1.0
  for (int t = 0; t < 15; ++t) {
    EXPECT_EQ(code_at(q, static_cast<std::size_t>(1 + 2 * t)), t);
    EXPECT_EQ(code_at(q, static_cast<std::size_t>(2 + 2 * t)), t + 1);
  }
  EXPECT_EQ(q.absmax[0], 1.0f);
  EXPECT_EQ(q.absmax[1], 0.0f);
  for (std::size_t i = 64; i < 128; ++i) EXPECT_EQ(code_at(q, i), 0);
  EXPECT_EQ(q.absmax[2], 0.25f);
  for (std::size_t i = 128; i < 192; ++i) EXPECT_EQ(code_at(q, i), 0);  // -0.25 / 0.25 = -1 -> code 0
  EXPECT_EQ(q.absmax[3], 1.0f);
  EXPECT_EQ(code_at(q, 192), 0);   // -1
  EXPECT_EQ(code_at(q, 194), 7);   // 0
  EXPECT_EQ(code_at(q, 196), 15);  // +1
  ASSERT_EQ(q.codes.size(), 99u);
  EXPECT_EQ(q.codes.back() & 0xf, 7);  // odd count: CUDA pads with 0.0, whose code is 7
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
  EXPECT_TRUE(mentions(error_of<NumericError>([&] {
                         quantize_nf4(x, {10, 10}, true, "model.layers.0.self_attn.q_proj.weight");
                       }),
                       {"q_proj.weight", "element 42", "Inf"}));
  x[42] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(quantize_nf4(x, {10, 10}, false, "w"), NumericError);
  EXPECT_THROW(quantize_nf4(x, {10, 11}, false, "w"), ShapeError);
}

}  // namespace
