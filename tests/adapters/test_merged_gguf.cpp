// llama-quantize's per-tensor type choice as merged GGUFs apply it, against the rules written down from
// llama.cpp src/llama-quant.cpp (llama_tensor_get_type, use_more_bits, the incompatible-row fallbacks).
#include <gtest/gtest.h>

#include <set>

#include "host/adapters/merged_gguf.h"
#include "host/core/error.h"

namespace pocketlora {
namespace {

TEST(MergedGguf, Q4KMTypeRulesOfLlamaQuantize) {
  // 32 layers: use_more_bits(i, 32) = i < 4 || i >= 28 || (i - 4) % 3 == 2.
  const std::set<int> more_bits = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  for (int i = 0; i < 32; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    const GgmlType wide = more_bits.count(i) ? GgmlType::Q6_K : GgmlType::Q4_K;
    EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, b + "attn_v.weight", 4096, 32), wide) << i;
    EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, b + "ffn_down.weight", 14336, 32), wide) << i;
    EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, b + "attn_q.weight", 4096, 32), GgmlType::Q4_K) << i;
    EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, b + "ffn_up.weight", 4096, 32), GgmlType::Q4_K) << i;
  }
  EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, "output.weight", 4096, 32), GgmlType::Q6_K);
  EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, "token_embd.weight", 4096, 32), GgmlType::Q4_K);
  EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, "blk.0.attn_norm.weight", 0, 32), GgmlType::F32);
  // Rows that are not a multiple of 256: Q4_K -> Q5_0, Q6_K -> Q8_0, then F16 when even 32 does not divide.
  EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, "blk.5.attn_q.weight", 64, 32), GgmlType::Q5_0);
  EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, "blk.0.attn_v.weight", 64, 32), GgmlType::Q8_0);
  EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, "blk.5.attn_q.weight", 172, 32), GgmlType::F16);
  EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, "output.weight", 2080, 32), GgmlType::Q8_0);
}

TEST(MergedGguf, Q8AndQ4TypeRules) {
  EXPECT_EQ(gguf_tensor_type(GgufFileType::Q8_0, "output.weight", 4096, 16), GgmlType::Q8_0);
  EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_0, "output.weight", 4096, 16), GgmlType::Q6_K);
  EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_0, "blk.0.attn_v.weight", 4096, 16), GgmlType::Q4_0);
  EXPECT_EQ(gguf_tensor_type(GgufFileType::Q8_0, "blk.0.ffn_down.weight", 172, 16), GgmlType::F16);
  EXPECT_EQ(gguf_tensor_type(GgufFileType::F16, "blk.0.ffn_down.weight", 172, 16), GgmlType::F16);
  EXPECT_EQ(gguf_tensor_type(GgufFileType::F16, "output_norm.weight", 0, 16), GgmlType::F32);
  EXPECT_EQ(gguf_tensor_type(GgufFileType::F32, "output.weight", 4096, 16), GgmlType::F32);
  EXPECT_EQ(parse_gguf_file_type("q4_k_m"), GgufFileType::Q4_K_M);
  EXPECT_THROW(parse_gguf_file_type("q3_k"), InvalidArgument);
}

}  // namespace
}  // namespace pocketlora
