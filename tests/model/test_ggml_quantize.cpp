// ggml block quantizers (ported from ggml-quants.c's reference path): blocks whose bytes follow by hand from the
// formulas, and quantize -> GgufFile's dequantizer round trips within each type's error bound.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/formats/ggml_quantize.h"
#include "host/formats/gguf.h"

namespace pocketlora {
namespace {

std::uint16_t f16_bits(const std::vector<std::uint8_t>& b, std::size_t at) {
  std::uint16_t v;
  std::memcpy(&v, b.data() + at, 2);
  return v;
}

TEST(GgmlQuantize, Q4_0BlockByHand) {
  // x[j] = (j mod 16) - 8: the largest magnitude is -8, so d = -8 / -8 = 1 (f16 0x3c00) and code = x + 8.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j % 16 - 8);
  const auto b = ggml_quantize(GgmlType::Q4_0, x.data(), 32);
  ASSERT_EQ(b.size(), 18u);
  EXPECT_EQ(f16_bits(b, 0), 0x3c00);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b[2 + j], j | (j << 4)) << j;  // element j low nibble, j + 16 high
}

TEST(GgmlQuantize, Q8_0BlockByHand) {
  // x[j] = j - 16: amax 16, d = 16/127, q = round((j - 16)·127/16): -127 at j = 0, 0 at 16, round(119.06) = 119 at 31.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  const auto b = ggml_quantize(GgmlType::Q8_0, x.data(), 32);
  ASSERT_EQ(b.size(), 34u);
  EXPECT_EQ(static_cast<std::int8_t>(b[2 + 0]), -127);
  EXPECT_EQ(static_cast<std::int8_t>(b[2 + 16]), 0);
  EXPECT_EQ(static_cast<std::int8_t>(b[2 + 31]), 119);
}

TEST(GgmlQuantize, Q5_0BlockByHand) {
  // x[j] = j - 16 for j < 32: largest magnitude -16 → d = 1, code = x + 16 = j: low 4 bits in qs, bit 4 in qh.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  const auto b = ggml_quantize(GgmlType::Q5_0, x.data(), 32);
  ASSERT_EQ(b.size(), 22u);
  EXPECT_EQ(f16_bits(b, 0), 0x3c00);
  std::uint32_t qh;
  std::memcpy(&qh, b.data() + 2, 4);
  EXPECT_EQ(qh, 0xffff0000u);  // codes 16..31 (elements 16..31) have bit 4 set
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b[6 + j], (j & 0xF) | (((j + 16) & 0xF) << 4)) << j;
}

TEST(GgmlQuantize, RoundTripsWithinEachTypesErrorBound) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> x(1024);
  for (auto& v : x) v = normal(rng);
  x[5] = 0.4f;  // an outlier, as trained weights have
  double rms = 0;
  for (float v : x) rms += double(v) * v;
  rms = std::sqrt(rms / x.size());
  // Relative RMS error bounds (measured: see the printout) with about 1.5x margin.
  for (const auto& [type, bound] : std::vector<std::pair<GgmlType, double>>{{GgmlType::F16, 1e-3},
                                                                            {GgmlType::Q8_0, 0.01},
                                                                            {GgmlType::Q6_K, 0.03},
                                                                            {GgmlType::Q5_0, 0.06},
                                                                            {GgmlType::Q4_K, 0.12},
                                                                            {GgmlType::Q4_0, 0.15}}) {
    const auto bytes = ggml_quantize(type, x.data(), 1024);
    EXPECT_EQ(static_cast<std::int64_t>(bytes.size()), 1024 / ggml_block_layout(type).first * ggml_block_layout(type).second);
    std::vector<float> y(1024);
    ggml_dequantize(type, bytes.data(), y.data(), 1024);
    double err = 0;
    for (std::size_t i = 0; i < x.size(); ++i) err += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
    err = std::sqrt(err / x.size()) / rms;
    std::printf("[ggml quantize] %-5s relative RMS error %.4f (bound %.3f)\n", ggml_type_name(type), err, bound);
    EXPECT_LT(err, bound) << ggml_type_name(type);
    EXPECT_GT(err, 0.0) << ggml_type_name(type);
  }
  // All-zero super-blocks stay exactly zero.
  const std::vector<float> zeros(256, 0.0f);
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K}) {
    std::vector<float> y(256, 1.0f);
    ggml_dequantize(t, ggml_quantize(t, zeros.data(), 256).data(), y.data(), 256);
    for (float v : y) EXPECT_EQ(v, 0.0f) << ggml_type_name(t);
  }
}

TEST(GgmlQuantize, ByteIdenticalToLlamaCppsQuantizedStories260K) {
  // The derived mixed-Q8_0 / mixed-Q4_0 files were quantized by llama.cpp from the same weights as the f32 GGUF:
  // quantizing the f32 tensors here must give their bytes exactly.
  POCKETLORA_REQUIRE_DATA(f32_path, "models/stories260K/derived/stories260K-f32.gguf");
  POCKETLORA_REQUIRE_DATA(q8_path, "models/stories260K/derived/stories260K-mixed-Q8_0.gguf");
  POCKETLORA_REQUIRE_DATA(q4_path, "models/stories260K/derived/stories260K-mixed-Q4_0.gguf");
  const auto f32 = GgufFile::open(f32_path);
  for (const auto& path : {q8_path, q4_path}) {
    const auto q = GgufFile::open(path);
    int compared = 0;
    for (const auto& t : q.tensors()) {
      if (t.type != GgmlType::Q8_0 && t.type != GgmlType::Q4_0) continue;
      const Tensor x = f32.load_f32(t.name);
      const auto ours = ggml_quantize(t.type, x.data<float>(), x.numel());
      ASSERT_EQ(ours.size(), t.nbytes) << t.name;
      EXPECT_EQ(std::memcmp(ours.data(), t.data, t.nbytes), 0) << path << ": " << t.name;
      ++compared;
    }
    EXPECT_EQ(compared, 32) << path;  // q, k, v, o, gate, up of 5 layers + embedding + output
  }
}

TEST(GgmlQuantize, RefusesPartialBlocksNamingTheType) {
  const std::vector<float> x(300, 1.0f);
  EXPECT_TRUE(test::mentions(test::error_of<InvalidArgument>([&] { ggml_quantize(GgmlType::Q4_K, x.data(), 300); }),
                             {"Q4_K", "300", "multiple of 256"}));
  EXPECT_TRUE(test::mentions(test::error_of<InvalidArgument>([&] { ggml_quantize(GgmlType::Q2_K, x.data(), 256); }),
                             {"Q2_K"}));
}

}  // namespace
}  // namespace pocketlora
