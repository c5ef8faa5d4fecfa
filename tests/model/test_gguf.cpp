// GGUF reader: the real stories260K files (F32, mixed Q8_0 / Q4_0), the F16 tiny-random model, the Llama 2
// vocabulary file, hand-built quant blocks, and hostile files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "common/test_data.h"
#include "host/model/gguf.h"
#include "host/model/safetensors.h"
#include "host/util/error.h"
#include "host/util/half.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

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
  const std::filesystem::path qp = data_path(rel);
  if (!std::filesystem::exists(qp)) GTEST_SKIP() << "missing " << qp;
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
      EXPECT_EQ(x.data<float>()[0], half_to_float(raw[0])) << t.name;
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
  const std::uint16_t d = float_to_half(0.5f), m = float_to_half(-1.0f);
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
  const std::uint16_t d = float_to_half(0.25f), dmin = float_to_half(0.5f);
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
  const std::uint16_t d6 = float_to_half(0.5f);
  std::memcpy(b6 + 208, &d6, 2);
  ggml_dequantize(GgmlType::Q6_K, b6, y, 256);
  EXPECT_EQ(y[0], 0.5f * 2 * static_cast<float>((0x05 | (2 << 4)) - 32));
  EXPECT_EQ(y[32], 0.5f * -3 * static_cast<float>((0x0a | (3 << 4)) - 32));
  EXPECT_EQ(y[1], 0.5f * 2 * -32.0f);
}
}  // namespace
