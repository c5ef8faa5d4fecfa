// GGUF writer: every value type and F32 / F16 / raw Q8_0 tensors round-trip through the reader; a real model
// rewritten tensor by tensor reads back identical.
#include <gtest/gtest.h>

#include <cstring>

#include "common/test_data.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/formats/gguf_writer.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(GgufWriter, MetadataAndTensorsRoundTrip) {
  TempDir tmp;
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.type", "adapter");
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", 16.0f);
  w.set_u32("llama.block_count", 5);
  w.set_i32("test.negative", -7);
  w.set_u64("test.big", 1ull << 40);
  w.set_bool("test.flag", true);
  w.set_string_array("test.strings", {"a", "\xe2\x96\x81the", ""});
  w.set_f32_array("test.floats", {0.5f, -1.25f});
  w.set_i32_array("test.ints", {1, -2, 3});
  Tensor a = random_tensor({3, 64}, 1), h = random_tensor({2, 8}, 2, -1, 1, DType::F16);
  w.add_tensor("blk.0.attn_q.weight.lora_a", a);
  w.add_tensor("half", h);
  std::vector<std::uint8_t> q8(34 * 2, 0);
  q8[0] = 0x00;
  q8[1] = 0x3c;  // d = 1.0 (f16)
  q8[2] = 5;
  w.add_raw_tensor("q8", GgmlType::Q8_0, {64}, q8);
  EXPECT_THROW(w.add_raw_tensor("bad", GgmlType::Q8_0, {64}, std::vector<std::uint8_t>(10)), ShapeError);
  w.write(tmp / "x.gguf");

  auto g = GgufFile::open(tmp / "x.gguf");
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.get_string("general.type"), "adapter");
  EXPECT_EQ(g.get_float("adapter.lora.alpha"), 16.0);
  EXPECT_EQ(g.get_uint("llama.block_count"), 5u);
  EXPECT_EQ(g.get_int("test.negative"), -7);
  EXPECT_EQ(g.get_uint("test.big"), 1ull << 40);
  EXPECT_TRUE(g.get_bool("test.flag"));
  EXPECT_EQ(g.get_string_array("test.strings"), (std::vector<std::string>{"a", "\xe2\x96\x81the", ""}));
  EXPECT_EQ(g.get_float_array("test.floats"), (std::vector<float>{0.5f, -1.25f}));
  EXPECT_EQ(g.get_int_array("test.ints"), (std::vector<std::int64_t>{1, -2, 3}));
  Tensor ra = g.load_f32("blk.0.attn_q.weight.lora_a");
  EXPECT_EQ(ra.shape(), a.shape());
  EXPECT_EQ(std::memcmp(ra.raw(), a.raw(), a.nbytes()), 0);
  Tensor rh = g.load_f32("half"), hf = h.to(DType::F32);
  EXPECT_EQ(std::memcmp(rh.raw(), hf.raw(), hf.nbytes()), 0);
  Tensor rq = g.load_f32("q8");
  EXPECT_EQ(rq.data<float>()[0], 5.0f);
  for (auto& t : g.tensors()) EXPECT_EQ(t.offset % 32, 0u) << t.name;
}

TEST(GgufWriter, RewritingARealModelPreservesIt) {
  POCKETLORA_REQUIRE_DATA(src, "models/stories260K/derived/stories260K-mixed-Q4_0.gguf");
  auto g = GgufFile::open(src);
  GgufWriter w;
  for (auto& [k, v] : g.metadata()) w.set(k, v);
  for (auto& t : g.tensors()) w.add_raw_tensor(t.name, t.type, t.ne, std::vector<std::uint8_t>(t.data, t.data + t.nbytes));
  TempDir tmp;
  w.write(tmp / "copy.gguf");
  auto c = GgufFile::open(tmp / "copy.gguf");
  ASSERT_EQ(c.tensors().size(), g.tensors().size());
  EXPECT_EQ(c.get_string_array("tokenizer.ggml.tokens"), g.get_string_array("tokenizer.ggml.tokens"));
  for (auto& t : g.tensors()) {
    const auto* u = c.find_tensor(t.name);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(u->type, t.type);
    ASSERT_EQ(u->nbytes, t.nbytes);
    EXPECT_EQ(std::memcmp(u->data, t.data, t.nbytes), 0) << t.name;
  }
}

}  // namespace
