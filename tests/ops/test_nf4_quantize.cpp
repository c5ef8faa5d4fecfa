#if POCKETLORA_HAS_VULKAN  // (not yet ported to op cases: tests/harness/op_case.h)
// GPU NF4 quantization (first level) vs the CPU reference (host/core/nf4_quantize.h, itself checked against
// hand-computed cases in tests/ref/test_nf4_quantize.cpp): codes and absmax must match bit for bit.
#include <cmath>
#include <cstring>
#include <limits>

#include "gpu/gpu_fixture.h"
#include <nlohmann/json.hpp>

#include "common/nf4_bnb_fixture.h"
#include "common/test_data.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/core/nf4_quantize.h"
#include "host/ops/nf4_matmul.h"
#include "host/ops/nf4_quantize.h"
#include "shaders/common/nf4_codebook.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

ops::Nf4FirstLevel cpu_rule(const std::vector<float>& x) {
  ops::Nf4FirstLevel r;
  quantize_nf4_codes(x, r.codes, r.absmax);
  return r;
}

void expect_same(const ops::Nf4FirstLevel& got, const ops::Nf4FirstLevel& want, const std::string& what) {
  ASSERT_EQ(got.codes.size(), want.codes.size()) << what;
  ASSERT_EQ(got.absmax.size(), want.absmax.size()) << what;
  for (std::size_t i = 0; i < got.codes.size(); ++i)
    ASSERT_EQ(got.codes[i], want.codes[i]) << what << ": code byte " << i;
  for (std::size_t i = 0; i < got.absmax.size(); ++i)
    ASSERT_EQ(std::bit_cast<std::uint32_t>(got.absmax[i]), std::bit_cast<std::uint32_t>(want.absmax[i]))
        << what << ": absmax " << i;
}

using Nf4Quantize = GpuTest;

TEST_F(Nf4Quantize, RandomTensorsMatchBitForBit) {
  // Shapes: rows of 172 (blocks span rows), odd element count (padded low nibble), a short last block.
  for (auto shape : {Shape{5, 172}, Shape{3, 21}, Shape{64, 64}, Shape{1, 1}, Shape{7, 130}}) {
    Tensor t = random_tensor(shape, 5 + static_cast<std::uint64_t>(shape[1]), -3.0f, 2.0f);
    auto got = ops::quantize_nf4_blocking(dev(), arena(), up(t), "w");
    expect_same(got, cpu_rule(t.to_float_vector()), "shape " + shape_str(shape));
  }
}

TEST_F(Nf4Quantize, GpuPathPlusHostDoubleQuantEqualsCpuQuantizer) {
  // The phone path: first level on the GPU, the absmax array (1/64 of the data) double-quantized on the host
  // by the reference. Must produce the same bytes as the CPU quantizer.
  Tensor t = random_tensor({300, 172}, 8, -2.0f, 2.0f);
  auto gpu = ops::quantize_nf4_blocking(dev(), arena(), up(t), "w");
  auto cpu = quantize_nf4({t.data<float>(), static_cast<std::size_t>(t.numel())}, t.shape(), true, "w");
  EXPECT_EQ(gpu.codes, cpu.codes);
  EXPECT_EQ(gpu.absmax, cpu.absmax);
  // Equal absmax bytes in, so the host's second level is the CPU quantizer's by construction (the same function):
  // it is checked against hand-computed values in tests/ref/test_nf4_double_quant.cpp instead.
}

TEST_F(Nf4Quantize, HandComputedCases) {
  // Block 0: values exactly at thresholds (x/absmax == t must NOT round up: strict >), just above them, and
  // the extremes +-absmax. Block 1: all zeros. Block 2: all equal. Block 3: a short tail of 5 elements.
  std::vector<float> x(64 * 3 + 5, 0.0f);
  x[0] = 1.0f;  // absmax of block 0 = 1 so x/absmax == x exactly
  for (int t = 0; t < 15; ++t) {
    x[static_cast<std::size_t>(1 + 2 * t)] = kNf4Thresholds[t];
    x[static_cast<std::size_t>(2 + 2 * t)] = std::nextafter(kNf4Thresholds[t], 2.0f);
  }
  x[31] = -1.0f;
  for (int i = 128; i < 192; ++i) x[static_cast<std::size_t>(i)] = -0.25f;
  for (int i = 192; i < 197; ++i) x[static_cast<std::size_t>(i)] = 0.5f * static_cast<float>(i - 194);
  auto got = ops::quantize_nf4_blocking(dev(), arena(), up(Tensor::from_vector(x, {197})), "hand");
  expect_same(got, cpu_rule(x), "hand-computed");
  auto code = [&](std::size_t i) { return i % 2 == 0 ? got.codes[i / 2] >> 4 : got.codes[i / 2] & 0xf; };
  EXPECT_EQ(code(0), 15u);   // +absmax -> 1.0
  EXPECT_EQ(code(31), 0u);   // -absmax -> -1.0
  for (int t = 0; t < 15; ++t) {
    EXPECT_EQ(code(static_cast<std::size_t>(1 + 2 * t)), static_cast<unsigned>(t)) << "at threshold " << t;
    EXPECT_EQ(code(static_cast<std::size_t>(2 + 2 * t)), static_cast<unsigned>(t + 1)) << "above threshold " << t;
  }
  EXPECT_EQ(got.absmax[1], 0.0f);
  for (std::size_t i = 64; i < 128; ++i) EXPECT_EQ(code(i), 0u) << "zero block element " << i;  // as CUDA
  for (std::size_t i = 128; i < 192; ++i) EXPECT_EQ(code(i), 0u);  // all equal negative -> -1.0
  EXPECT_EQ(got.absmax[3], 1.0f);
  EXPECT_EQ(got.codes.size(), 99u);
  EXPECT_EQ(got.codes.back() & 0xf, 7);  // odd count: CUDA pads with 0.0, whose code is 7
}

TEST_F(Nf4Quantize, BitsandbytesFixturesByteForByte) {
  // GPU first level + host double quantization must store the bytes bitsandbytes saves; the GPU dequantize of
  // the saved state (with the file's own nested_quant_map) must give dequantize_4bit's output bit for bit.
  POCKETLORA_REQUIRE_DATA(dir, kNf4BnbDir);
  for (const char* name : kNf4BnbCases) {
    SCOPED_TRACE(name);
    const Nf4BnbCase c = load_nf4_bnb_case(dir, name);
    const auto got = ops::quantize_nf4_blocking(dev(), arena(), up(c.input), name);
    EXPECT_TRUE(same_bytes(got.codes, c.expected_bytes(""))) << "weight";
    // The saved state, as the one host NF4 representation, with the file's own maps.
    Nf4Quantized saved;
    saved.shape = c.input.shape();
    const auto code_bytes = c.expected_bytes("");
    saved.codes.assign(code_bytes.begin(), code_bytes.end());
    saved.double_quant = c.double_quant;
    auto floats = [&](const std::string& suffix) {
      const auto b = c.expected_bytes(suffix);
      std::vector<float> v(b.size() / sizeof(float));
      std::memcpy(v.data(), b.data(), b.size());
      return v;
    };
    if (c.double_quant) {
      const Nf4DoubleQuant dq = double_quantize_absmax(got.absmax);
      EXPECT_TRUE(same_bytes(dq.absmax_q, c.expected_bytes(".absmax"))) << "absmax codes";
      EXPECT_TRUE(same_bytes(as_bytes_of(dq.nested_absmax), c.expected_bytes(".nested_absmax")));
      const auto b = c.expected_bytes(".absmax");
      saved.dq.absmax_q.assign(b.begin(), b.end());
      saved.dq.nested_absmax = floats(".nested_absmax");
      saved.dq.code_map = floats(".nested_quant_map");
      const auto js = c.expected_bytes(".quant_state.bitsandbytes__nf4");
      saved.dq.offset = nlohmann::json::parse(js.begin(), js.end())["nested_offset"].get<float>();
      EXPECT_EQ(dq.offset, saved.dq.offset) << "nested_offset";
    } else {
      EXPECT_TRUE(same_bytes(as_bytes_of(got.absmax), c.expected_bytes(".absmax"))) << "f32 absmax";
      saved.absmax = floats(".absmax");
    }
    const auto w = ops::upload_nf4(dev(), arena(), saved, name);
    const auto out = ops::allocate(arena(), c.input.shape(), DType::F32, "dequant");
    vk::Sequence seq(dev());
    ops::nf4_dequantize(seq, w, out);
    seq.submit();
    const Tensor d = down(out);
    EXPECT_TRUE(same_bytes({static_cast<const std::uint8_t*>(d.raw()), d.nbytes()},
                           {static_cast<const std::uint8_t*>(c.dequant.raw()), c.dequant.nbytes()}))
        << "GPU dequant";
  }
}

TEST_F(Nf4Quantize, F16InputMatchesF32OfSameValues) {
  if (!dev().caps().storage_16bit) GTEST_SKIP() << "no 16-bit storage";
  Tensor h = random_tensor({9, 100}, 77, -1.0f, 1.0f, DType::F16);
  auto got = ops::quantize_nf4_blocking(dev(), arena(), up(h), "f16 weight");
  expect_same(got, cpu_rule(h.to_float_vector()), "f16");
}

TEST_F(Nf4Quantize, NanOrInfIsRejectedNamingTensorAndElement) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    Tensor t = random_tensor({4, 50}, 3);
    t.data<float>()[137] = bad;
    t.data<float>()[190] = bad;
    try {
      ops::quantize_nf4_blocking(dev(), arena(), up(t), "model.layers.3.mlp.up_proj.weight");
      FAIL() << "expected NumericError";
    } catch (const NumericError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("model.layers.3.mlp.up_proj.weight"), std::string::npos) << m;
      EXPECT_NE(m.find("element 137"), std::string::npos) << m;
    }
  }
}

}  // namespace
#endif  // POCKETLORA_HAS_VULKAN
