// GGUF reader: the real stories260K files (F32, mixed Q8_0 / Q4_0), the F16 tiny-random model, the Llama 2
// vocabulary file, hand-built quant blocks, and hostile files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <fstream>

#include "common/test_data.h"
#include "host/core/error.h"
#include "host/core/half.h"
#include "host/formats/gguf.h"
#include "host/formats/safetensors.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

// IEEE 754 binary16 decoded from its definition, independent of host/core/half.h (checked against hand-computed
// bit patterns in HalfConversionHandComputedBitPatterns).
float ieee_half(std::uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
  double v;
  if (exp == 0) v = std::ldexp(mant, -24);  // subnormal: mant * 2^-24
  else if (exp == 31) v = mant ? std::nan("") : INFINITY;
  else v = std::ldexp(1024 + mant, exp - 25);  // (1 + mant/1024) * 2^(exp-15)
  return static_cast<float>(sign ? -v : v);
}

TEST(Gguf, ReadsStories260KF32AndMatchesSafetensors) {
  POCKETLORA_REQUIRE_DATA(gp, "models/stories260K/derived/stories260K-f32.gguf");
  POCKETLORA_REQUIRE_DATA(sp, "models/stories260K/derived/hf/model.safetensors");
  auto g = GgufFile::open(gp);
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.tensors().size(), 48u);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(g.get_uint("llama.context_length"), 128u);
  EXPECT_EQ(g.get_string_array("tokenizer.ggml.tokens").size(), 512u);
  EXPECT_THROW(g.get_string("llama.embedding_length"), FormatError);  // wrong type, named
  EXPECT_THROW(g.value("no.such.key"), FormatError);
  const auto* t = g.find_tensor("token_embd.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ne, (std::vector<std::int64_t>{64, 512}));
  Tensor emb = g.load_f32("token_embd.weight");
  auto s = SafetensorsFile::open(sp);
  Tensor hf = s.tensor("model.embed_tokens.weight");
  ASSERT_EQ(emb.shape(), hf.shape());
  EXPECT_EQ(std::memcmp(emb.raw(), hf.raw(), emb.nbytes()), 0);  // no RoPE permutation on the embedding
  Tensor down = g.load_f32("blk.0.ffn_down.weight");
  Tensor hf_down = s.tensor("model.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(std::memcmp(down.raw(), hf_down.raw(), down.nbytes()), 0);
}

// Quantized files vs the f32 file, per 32-element block: Q8_0 is within half a step d = amax / 127 plus the f16
// rounding of d times |q| <= 127 (2^-11 * 127 d = 0.062 d), so 0.57 d; Q4_0 within one step (d = max / -8: the
// clamp at 15 can cost up to a full step).
void check_quantized(const char* rel, GgmlType expect_type, double steps_per_amax) {
  POCKETLORA_REQUIRE_DATA(fp, "models/stories260K/derived/stories260K-f32.gguf");
  POCKETLORA_REQUIRE_DATA(qp, rel);
  auto f = GgufFile::open(fp), q = GgufFile::open(qp);
  int quantized = 0;
  for (auto& ti : q.tensors()) {
    Tensor a = f.load_f32(ti.name), b = q.load_f32(ti.name);
    ASSERT_EQ(a.shape(), b.shape()) << ti.name;
    if (ti.type == GgmlType::F32) {
      EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << ti.name;
      continue;
    }
    ASSERT_EQ(ti.type, expect_type) << ti.name;
    ++quantized;
    for (std::int64_t blk = 0; blk < a.numel() / 32; ++blk) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(a.data<float>()[blk * 32 + j]));
      for (int j = 0; j < 32; ++j)
        ASSERT_LE(std::fabs(a.data<float>()[blk * 32 + j] - b.data<float>()[blk * 32 + j]), amax * steps_per_amax + 1e-7)
            << ti.name << " element " << blk * 32 + j;
    }
  }
  EXPECT_GT(quantized, 20);
}

TEST(Gguf, MixedQ8_0IsCloseToF32) { check_quantized("models/stories260K/derived/stories260K-mixed-Q8_0.gguf", GgmlType::Q8_0, 0.57 / 127); }
TEST(Gguf, MixedQ4_0IsCloseToF32) { check_quantized("models/stories260K/derived/stories260K-mixed-Q4_0.gguf", GgmlType::Q4_0, 1.01 / 8); }

TEST(Gguf, ReadsF16TinyRandomAndLlama2Vocab) {
  POCKETLORA_REQUIRE_DATA(p, "models/llama-2-tiny-random/llama-2-tiny-random.gguf");
  auto g = GgufFile::open(p);
  EXPECT_EQ(g.get_string_array("tokenizer.ggml.tokens").size(), 32000u);
  EXPECT_EQ(g.get_float_array("tokenizer.ggml.scores").size(), 32000u);
  EXPECT_EQ(g.get_int_array("tokenizer.ggml.token_type").size(), 32000u);
  bool saw_f16 = false;
  for (auto& t : g.tensors())
    if (t.type == GgmlType::F16) {
      saw_f16 = true;
      Tensor x = g.load_f32(t.name);
      const auto* raw = reinterpret_cast<const std::uint16_t*>(t.data);
      for (std::int64_t i = 0; i < std::min<std::int64_t>(x.numel(), 64); ++i)
        EXPECT_EQ(x.data<float>()[i], ieee_half(raw[i])) << t.name << " element " << i;
    }
  EXPECT_TRUE(saw_f16);
  POCKETLORA_REQUIRE_DATA(v, "tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf");
  auto voc = GgufFile::open(v);
  auto tokens = voc.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 32000u);
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[29871], "\xe2\x96\x81");  // "▁"
}

TEST(GgufDequant, HandBuiltQ4_1Q5_0Q5_1Blocks) {
  // Block layouts from ggml-common.h, values computed here element by element.
  std::uint8_t q41[20];
  const std::uint16_t d = 0x3800, m = 0xBC00;  // f16 bit patterns of 0.5 and -1.0
  std::memcpy(q41, &d, 2);
  std::memcpy(q41 + 2, &m, 2);
  for (int j = 0; j < 16; ++j) q41[4 + j] = static_cast<std::uint8_t>((j & 0xf) | ((15 - j) << 4));
  float out[32];
  ggml_dequantize(GgmlType::Q4_1, q41, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.5f * static_cast<float>(j) - 1.0f);
    EXPECT_EQ(out[j + 16], 0.5f * static_cast<float>(15 - j) - 1.0f);
  }
  std::uint8_t q50[22] = {};
  std::memcpy(q50, &d, 2);
  const std::uint32_t qh = 0x80000001u;  // fifth bit set for element 0 and element 31
  std::memcpy(q50 + 2, &qh, 4);
  for (int j = 0; j < 16; ++j) q50[6 + j] = 0x33;
  ggml_dequantize(GgmlType::Q5_0, q50, out, 32);
  EXPECT_EQ(out[0], 0.5f * (3 + 16 - 16));
  EXPECT_EQ(out[1], 0.5f * (3 - 16));
  EXPECT_EQ(out[31], 0.5f * (3 + 16 - 16));
  std::uint8_t q51[24] = {};
  std::memcpy(q51, &d, 2);
  std::memcpy(q51 + 2, &m, 2);
  std::memcpy(q51 + 4, &qh, 4);
  for (int j = 0; j < 16; ++j) q51[8 + j] = 0x21;
  ggml_dequantize(GgmlType::Q5_1, q51, out, 32);
  EXPECT_EQ(out[0], 0.5f * (1 + 16) - 1.0f);
  EXPECT_EQ(out[16], 0.5f * 2 - 1.0f);
  EXPECT_EQ(out[31], 0.5f * (2 + 16) - 1.0f);
}

TEST(Gguf, TruncationsAndCorruptionsAreClearErrors) {
  POCKETLORA_REQUIRE_DATA(src, "models/stories260K/derived/stories260K-f32.gguf");
  std::ifstream in(src, std::ios::binary);
  std::vector<char> bytes{std::istreambuf_iterator<char>(in), {}};
  TempDir tmp;
  const auto p = tmp / "bad.gguf";
  auto write = [&](const std::vector<char>& b) {
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(b.data(), static_cast<std::streamsize>(b.size()));
  };
  int cases = 0;
  // Every truncation inside the header region, then strided through the data.
  for (std::size_t cut = 0; cut < bytes.size(); cut += cut < 8192 ? 37 : 9973) {
    write(std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)));
    ++cases;
    try {
      GgufFile::open(p);
      ADD_FAILURE() << "truncation at " << cut << " accepted";
    } catch (const FormatError& e) {
      ASSERT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  }
  // Absurd counts and a bad magic.
  for (std::size_t off : {std::size_t{0}, std::size_t{8}, std::size_t{16}}) {
    auto b = bytes;
    for (int k = 0; k < 8; ++k) b[off + static_cast<std::size_t>(k)] = static_cast<char>(0xff);
    write(b);
    ++cases;
    EXPECT_THROW(GgufFile::open(p), FormatError) << "offset " << off;
  }
  std::printf("[corpus] GGUF: %d corrupt files rejected\n", cases);
}

}  // namespace

namespace {
TEST(GgufDequant, HandBuiltKQuantBlocks) {
  // Q4_K: d = 0.25, dmin = 0.5; sub-block 0 scale 3 / min 2, sub-block 5 scale (from the high bits) etc.
  std::uint8_t b4[144] = {};
  const std::uint16_t d = 0x3400, dmin = 0x3800;  // f16 bit patterns of 0.25 and 0.5
  std::memcpy(b4, &d, 2);
  std::memcpy(b4 + 2, &dmin, 2);
  std::uint8_t* sc = b4 + 4;
  sc[0] = 3;             // scale of sub-block 0
  sc[4] = 2;             // min of sub-block 0
  sc[1] = 0x40 | 5;      // scale of sub-block 1 = 5; top bits 01 feed sub-block 5's scale high bits
  sc[9] = 0x07;          // sub-block 5: scale low nibble 7 (| 1 << 4 = 23), min high nibble 0 (| top bits of sc[5])
  sc[5] = 0x80 | 1;      // min of sub-block 1 = 1; top bits 10 feed sub-block 5's min high bits (2 << 4 = 32)
  for (int l = 0; l < 128; ++l) b4[16 + l] = static_cast<std::uint8_t>((l % 16) | ((15 - l % 16) << 4));
  float y[256];
  ggml_dequantize(GgmlType::Q4_K, b4, y, 256);
  for (int l = 0; l < 32; ++l) {
    EXPECT_EQ(y[l], 0.25f * 3 * static_cast<float>(l % 16) - 0.5f * 2) << l;            // sub-block 0: low nibbles
    EXPECT_EQ(y[32 + l], 0.25f * 5 * static_cast<float>(15 - l % 16) - 0.5f * 1) << l;  // sub-block 1: high nibbles
    EXPECT_EQ(y[160 + l], 0.25f * 23 * static_cast<float>(15 - (64 + l) % 16) - 0.5f * 32) << l;  // sub-block 5
  }
  // Q6_K: d = 0.5, scales[0] = 2, scales[2] = -3; element 0 = ql[0] low | qh[0] bits 0-1, element 32 = ql[32] low |
  // qh[0] bits 2-3.
  std::uint8_t b6[210] = {};
  b6[0] = 0x05;   // ql[0]
  b6[32] = 0x0a;  // ql[32]
  b6[128] = 0x02 | (0x03 << 2);  // qh[0]
  b6[192] = 2;
  b6[194] = static_cast<std::uint8_t>(-3);
  const std::uint16_t d6 = 0x3800;  // f16 0.5
  std::memcpy(b6 + 208, &d6, 2);
  ggml_dequantize(GgmlType::Q6_K, b6, y, 256);
  EXPECT_EQ(y[0], 0.5f * 2 * static_cast<float>((0x05 | (2 << 4)) - 32));
  EXPECT_EQ(y[32], 0.5f * -3 * static_cast<float>((0x0a | (3 << 4)) - 32));
  EXPECT_EQ(y[1], 0.5f * 2 * -32.0f);
}

TEST(GgufHalf, HalfConversionHandComputedBitPatterns) {
  // binary16: sign | 5-bit exponent (bias 15) | 10-bit mantissa; values worked out by hand.
  const std::pair<std::uint16_t, float> cases[] = {
      {0x3C00, 1.0f},     {0xC000, -2.0f},          {0x3800, 0.5f},           {0x3400, 0.25f},
      {0x7BFF, 65504.0f}, {0x0001, 0x1p-24f},       {0x03FF, 1023 * 0x1p-24f}, {0x3555, 0.333251953125f},
      {0x7C00, INFINITY}, {0xFC00, -INFINITY},      {0x0000, 0.0f}};
  for (auto [bits, want] : cases) {
    EXPECT_EQ(half_to_float(bits), want) << std::hex << bits;
    EXPECT_EQ(ieee_half(bits), want) << std::hex << bits;
    EXPECT_EQ(float_to_half(want), bits) << want;
  }
  EXPECT_TRUE(std::signbit(half_to_float(0x8000)) && half_to_float(0x8000) == 0.0f);
  EXPECT_TRUE(std::isnan(half_to_float(0x7E00)));
}

TEST(GgufDequant, HandBuiltBf16Values) {
  // bf16 is the top half of an f32: bit patterns worked out by hand.
  const std::uint16_t raw[8] = {0x3F80, 0xC040, 0x4049, 0x3E80, 0x0001, 0x7F80, 0xFF80, 0x8000};
  const float want[8] = {1.0f, -3.0f, 3.140625f, 0.25f, 0x1p-133f, INFINITY, -INFINITY, -0.0f};
  float out[8];
  ggml_dequantize(GgmlType::BF16, reinterpret_cast<const std::uint8_t*>(raw), out, 8);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(out[i], want[i]) << "element " << i;
    EXPECT_EQ(std::signbit(out[i]), std::signbit(want[i])) << "element " << i;
  }
}

// Q5_K (ggml-common.h block_q5_K, 176 bytes): d, dmin (f16), scales[12] (eight 6-bit scale/min pairs packed as in
// get_scale_min_k4), qh[32] (fifth bits), qs[128] (low nibbles). Element e: chunk c = e / 64, w = e % 64,
// sub-block 2c + (w >= 32), low nibble of qs[32c + w % 32] for w < 32 else high nibble, fifth bit = bit
// (2c + (w >= 32)) of qh[w % 32]; y = d * scale * q - dmin * min. Packed here from that description.
TEST(GgufDequant, HandBuiltQ5_KBlockAllValues) {
  const int sc[8] = {1, 5, 63, 17, 40, 33, 7, 20}, mn[8] = {0, 3, 63, 16, 47, 2, 31, 9};
  std::uint8_t b[176] = {};
  const std::uint16_t d = 0x3800, dmin = 0x3400;  // f16 0.5 and 0.25
  std::memcpy(b, &d, 2);
  std::memcpy(b + 2, &dmin, 2);
  std::uint8_t* scales = b + 4;
  std::uint8_t* qh = b + 16;
  std::uint8_t* qs = b + 48;
  for (int j = 0; j < 4; ++j) {
    scales[j] = static_cast<std::uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    scales[j + 4] = static_cast<std::uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    scales[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
  auto q5 = [](int e) { return (e * 11 + 5) % 32; };
  for (int e = 0; e < 256; ++e) {
    const int c = e / 64, w = e % 64, hi = w >= 32, l = w % 32;
    qs[32 * c + l] |= static_cast<std::uint8_t>((q5(e) & 0xF) << (hi ? 4 : 0));
    if (q5(e) & 16) qh[l] |= static_cast<std::uint8_t>(1u << (2 * c + hi));
  }
  float y[256];
  ggml_dequantize(GgmlType::Q5_K, b, y, 256);
  for (int e = 0; e < 256; ++e) {
    const int sb = e / 32;
    EXPECT_EQ(y[e], 0.5f * static_cast<float>(sc[sb] * q5(e)) - 0.25f * static_cast<float>(mn[sb])) << "element " << e;
  }
  // Spot values by hand: e = 0: 0.5*1*5 - 0 = 2.5; e = 100 (sub-block 3, q 17): 0.5*17*17 - 0.25*16 = 140.5;
  // e = 160 (sub-block 5, q 5): 0.5*33*5 - 0.25*2 = 82; e = 255 (sub-block 7, q 26): 0.5*20*26 - 0.25*9 = 257.75.
  EXPECT_EQ(y[0], 2.5f);
  EXPECT_EQ(y[100], 140.5f);
  EXPECT_EQ(y[160], 82.0f);
  EXPECT_EQ(y[255], 257.75f);
}

// Q6_K (block_q6_K, 210 bytes): ql[128] low nibbles, qh[64] high 2-bit pairs, scales[16] (int8), d (f16).
// Element e: half h = e / 128, p = e % 128, group g = p / 32, l = p % 32; low 4 bits from ql[64h + l + 32 (g & 1)]
// (low nibble for g < 2, high otherwise), high 2 bits = bits 2g..2g+1 of qh[32h + l]; y = d * scales[e / 16] * (q - 32).
TEST(GgufDequant, HandBuiltQ6_KBlockAllValues) {
  std::uint8_t b[210] = {};
  std::uint8_t* ql = b;
  std::uint8_t* qh = b + 128;
  auto* scales = reinterpret_cast<std::int8_t*>(b + 192);
  for (int s = 0; s < 16; ++s) scales[s] = static_cast<std::int8_t>(3 * s - 20);  // -20 .. 25
  const std::uint16_t d = 0x3800;  // f16 0.5
  std::memcpy(b + 208, &d, 2);
  auto q6 = [](int e) { return (e * 13 + 7) % 64; };
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, p = e % 128, g = p / 32, l = p % 32;
    ql[64 * h + l + 32 * (g & 1)] |= static_cast<std::uint8_t>((q6(e) & 0xF) << (g >= 2 ? 4 : 0));
    qh[32 * h + l] |= static_cast<std::uint8_t>((q6(e) >> 4) << (2 * g));
  }
  float y[256];
  ggml_dequantize(GgmlType::Q6_K, b, y, 256);
  for (int e = 0; e < 256; ++e)
    EXPECT_EQ(y[e], 0.5f * static_cast<float>((3 * (e / 16) - 20) * (q6(e) - 32))) << "element " << e;
  // Spot values by hand: e = 0: 0.5 * -20 * (7 - 32) = 250; e = 77 (scale -8, q 48): -64; e = 255 (scale 25, q 58): 325.
  EXPECT_EQ(y[0], 250.0f);
  EXPECT_EQ(y[77], -64.0f);
  EXPECT_EQ(y[255], 325.0f);
}
}  // namespace
