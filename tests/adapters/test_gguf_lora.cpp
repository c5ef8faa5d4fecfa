// GGUF LoRA export/import in llama.cpp's adapter format: metadata keys, tensor names and ne as llama.cpp's loader
// checks them (values written down from its source below), q/k lora_b rows in llama.cpp's interleaved order,
// bit-identical round trips, the scale folding, and clear errors for foreign, truncated or hostile files.
#include <gtest/gtest.h>

#include <cstring>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/adapters/gguf_lora.h"
#include "adapters/tiny_adapter_fixtures.h"
#include "host/core/error.h"
#include "host/formats/gguf.h"
#include "host/formats/gguf_writer.h"
#include "model/file_corpus.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::mentions;
using test::TempDir;
using test::tiny_llama_config;
using test::expect_same_tensors;
using test::find;
using test::labelled;

PeftAdapter tiny_adapter(std::vector<std::string> targets, std::int64_t r = 2) {
  PeftAdapter a;
  a.config.r = r;
  a.config.lora_alpha = 16;
  a.config.targets = targets;
  const std::map<std::string, std::pair<std::int64_t, std::int64_t>> out_in = {
      {"q", {16, 16}}, {"k", {8, 16}}, {"v", {8, 16}}, {"o", {16, 16}}, {"gate", {24, 16}}, {"up", {24, 16}},
      {"down", {16, 24}}};
  int salt = 1;
  for (int i = 0; i < 2; ++i)
    for (const auto& t : targets) {
      const auto [out, in] = out_in.at(t);
      const std::string p = "layers." + std::to_string(i) + "." + t + ".";
      a.tensors.emplace_back(p + "A", labelled({r, in}, salt++, 0.25f));
      a.tensors.emplace_back(p + "B", labelled({out, r}, salt++, 0.25f));
    }
  return a;
}

TEST(GgufLora, KeysNamesAndNeAsLlamaCppLoadsThem) {
  TempDir tmp;
  write_gguf_lora(tmp / "a.gguf", tiny_adapter({"q", "k", "v", "o", "gate", "up", "down"}), tiny_llama_config(8),
                  RopeLayout::Interleaved);
  const auto f = GgufFile::open(tmp / "a.gguf");
  // llama.cpp src/llama-adapter.cpp (ggml-org/llama.cpp 0650ea8c), llama_adapter_lora_init_impl, "check metadata":
  // general.type must be "adapter", general.architecture the model's ("llama"), adapter.type "lora", and
  // adapter.lora.alpha is read as f32.
  EXPECT_EQ(f.get_string("general.type"), "adapter");
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_string("adapter.type"), "lora");
  EXPECT_EQ(f.value("adapter.lora.alpha").type, GgufValueType::F32);
  EXPECT_EQ(f.get_float("adapter.lora.alpha"), 16.0);
  EXPECT_EQ(f.tensors().size(), 2u * 7u * 2u);
  // Names: convert_lora_to_gguf.py yields (base GGUF name + ".lora_a", lora_A) and (+ ".lora_b", lora_B); the base
  // names are llama.cpp's blk.{i}.attn_q.weight ... ffn_down.weight (gguf-py/gguf/constants.py, MODEL_TENSOR names).
  // ne: the same file's loader check "validate tensor shape": model_tensor->ne[0] == a->ne[0] (in),
  // model_tensor->ne[1] == b->ne[1] (out), a->ne[1] == b->ne[0] (rank); llama.cpp's attn_k.weight is
  // {n_embd, n_embd_k_gqa} and ffn_down.weight {n_ff, n_embd} (src/llama-model.cpp, LLM_ARCH_LLAMA tensors).
  const std::map<std::string, std::vector<std::int64_t>> ne = {
      {"blk.0.attn_q.weight.lora_a", {16, 2}},      {"blk.0.attn_q.weight.lora_b", {2, 16}},
      {"blk.1.attn_k.weight.lora_a", {16, 2}},      {"blk.1.attn_k.weight.lora_b", {2, 8}},
      {"blk.0.attn_v.weight.lora_b", {2, 8}},       {"blk.1.attn_output.weight.lora_a", {16, 2}},
      {"blk.0.ffn_gate.weight.lora_b", {2, 24}},    {"blk.1.ffn_up.weight.lora_a", {16, 2}},
      {"blk.1.ffn_down.weight.lora_a", {24, 2}},    {"blk.1.ffn_down.weight.lora_b", {2, 16}}};
  for (const auto& [name, want] : ne) {
    const auto* t = f.find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->ne, want) << name;
    EXPECT_EQ(t->type, GgmlType::F32) << name;
  }
}

TEST(GgufLora, QkLoraBRowsInLlamaCppInterleavedOrder) {
  // convert_hf_to_gguf.py LlamaModel.permute: reshape(n_head, 2, hd/2, ...).swapaxes(1, 2): GGUF row h·8 + 2i + j
  // = HF row h·8 + 4j + i; convert_lora_to_gguf.py's LoraTorchTensor applies it to lora_B's rows. head_dim 8:
  // GGUF rows 0..7 of a head are HF rows 0, 4, 1, 5, 2, 6, 3, 7.
  const std::vector<int> hf_row_of = {0, 4, 1, 5, 2, 6, 3, 7};
  TempDir tmp;
  const auto a = tiny_adapter({"q", "k", "v"});
  write_gguf_lora(tmp / "rh.gguf", a, tiny_llama_config(8), RopeLayout::RotateHalf);
  write_gguf_lora(tmp / "il.gguf", a, tiny_llama_config(8), RopeLayout::Interleaved);
  const auto rh = GgufFile::open(tmp / "rh.gguf"), il = GgufFile::open(tmp / "il.gguf");
  for (const char* m : {"q", "k", "v"}) {
    const std::string gguf = std::string("blk.1.attn_") + m + ".weight.lora_b";
    const Tensor ours = find(a, std::string("layers.1.") + m + ".B");
    const Tensor from_rh = rh.load_f32(gguf), from_il = il.load_f32(gguf);
    for (std::int64_t row = 0; row < ours.shape()[0]; ++row) {
      const std::int64_t src = std::string(m) == "v" ? row : row / 8 * 8 + hf_row_of[row % 8];
      for (int c = 0; c < 2; ++c) {
        EXPECT_EQ(from_rh.data<float>()[row * 2 + c], ours.data<float>()[src * 2 + c]) << m << " row " << row;
        EXPECT_EQ(from_il.data<float>()[row * 2 + c], ours.data<float>()[row * 2 + c]) << m << " row " << row;
      }
    }
    const Tensor lora_a = rh.load_f32(std::string("blk.1.attn_") + m + ".weight.lora_a");
    EXPECT_EQ(std::memcmp(lora_a.raw(), find(a, std::string("layers.1.") + m + ".A").raw(), lora_a.nbytes()), 0);
  }
}

TEST(GgufLora, RoundTripsBitIdentical) {
  TempDir tmp;
  for (auto layout : {RopeLayout::Interleaved, RopeLayout::RotateHalf}) {
    auto a = tiny_adapter({"q", "k", "o", "down"});
    a.config.layers = {};
    write_gguf_lora(tmp / "a.gguf", a, tiny_llama_config(8), layout);
    const auto b = read_gguf_lora(tmp / "a.gguf", tiny_llama_config(8), layout);
    expect_same_tensors(a, b);
    EXPECT_EQ(b.config.r, 2);
    EXPECT_EQ(b.config.lora_alpha, 16);
    EXPECT_EQ(b.config.targets, (std::vector<std::string>{"q", "k", "o", "down"}));
    EXPECT_TRUE(b.config.layers.empty());
  }
  // f16 tensors: the import equals the f32 adapter rounded to f16.
  const auto a = tiny_adapter({"v", "up"});
  write_gguf_lora(tmp / "h.gguf", a, tiny_llama_config(8), RopeLayout::Interleaved, DType::F16);
  EXPECT_EQ(GgufFile::open(tmp / "h.gguf").find_tensor("blk.0.ffn_up.weight.lora_b")->type, GgmlType::F16);
  PeftAdapter rounded = a;
  for (auto& [n, t] : rounded.tensors) t = t.to(DType::F16).to(DType::F32);
  expect_same_tensors(rounded, read_gguf_lora(tmp / "h.gguf", tiny_llama_config(8), RopeLayout::Interleaved));
}

TEST(GgufLora, PerModuleRanksLayersAndFoldedScales) {
  TempDir tmp;
  PeftAdapter a;
  a.config.r = 2;
  a.config.lora_alpha = 16;
  a.config.targets = {"q", "down"};
  a.config.layers = {1};
  a.config.module_r = {{"layers.1.q", 4}};
  a.config.module_alpha = {{"layers.1.down", 4}};  // scale 4/2 = 2 where the file's alpha gives 16/2 = 8
  a.tensors = {{"layers.1.q.A", labelled({4, 16}, 1, 0.25f)}, {"layers.1.q.B", labelled({16, 4}, 2, 0.25f)},
               {"layers.1.down.A", labelled({2, 24}, 3, 0.25f)}, {"layers.1.down.B", labelled({16, 2}, 4, 0.25f)}};
  write_gguf_lora(tmp / "a.gguf", a, tiny_llama_config(8), RopeLayout::Interleaved);
  const auto b = read_gguf_lora(tmp / "a.gguf", tiny_llama_config(8), RopeLayout::Interleaved);
  EXPECT_EQ(b.config.layers, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(b.config.r, 4);  // the first module's rank (q)
  EXPECT_EQ(b.config.module_r, (std::map<std::string, std::int64_t>{{"layers.1.down", 2}}));
  EXPECT_TRUE(b.config.module_alpha.empty());
  EXPECT_EQ(b.config.scale_of("layers.1.q"), 16.0 / 4);
  EXPECT_EQ(b.config.scale_of("layers.1.down"), 16.0 / 2);
  EXPECT_EQ(std::memcmp(find(b, "layers.1.q.B").raw(), find(a, "layers.1.q.B").raw(), 16 * 4 * 4), 0);
  // down's B carries the ratio 2 / 8 so that llama.cpp's 16/2 · B' equals the adapter's 4/2 · B.
  const Tensor& down_b = find(b, "layers.1.down.B");
  for (std::int64_t k = 0; k < down_b.numel(); ++k)
    EXPECT_EQ(down_b.data<float>()[k], find(a, "layers.1.down.B").data<float>()[k] * 0.25f) << k;

  // rsLoRA: 16 / sqrt(4) = 8 where llama.cpp applies 16 / 4 = 4: B doubles.
  auto rs = tiny_adapter({"v"}, 4);
  rs.config.use_rslora = true;
  write_gguf_lora(tmp / "rs.gguf", rs, tiny_llama_config(8), RopeLayout::Interleaved);
  const auto rb = read_gguf_lora(tmp / "rs.gguf", tiny_llama_config(8), RopeLayout::Interleaved);
  EXPECT_FALSE(rb.config.use_rslora);
  EXPECT_EQ(find(rb, "layers.0.v.B").data<float>()[5], find(rs, "layers.0.v.B").data<float>()[5] * 2);
}

// A hand-built adapter GGUF with the given metadata and tensors (zeros of the given ne), via GgufWriter.
void write_adapter_gguf(const fs::path& p, const std::map<std::string, std::string>& kv,
                        const std::vector<std::pair<std::string, std::vector<std::int64_t>>>& tensors) {
  GgufWriter w;
  for (const auto& [k, v] : kv) w.set_string(k, v);
  w.set_f32("adapter.lora.alpha", 8);
  for (const auto& [name, ne] : tensors) w.add_tensor(name, Tensor::zeros({ne[1], ne[0]}));
  w.write(p);
}

TEST(GgufLora, RefusesForeignFilesNamingKeyOrTensor) {
  TempDir tmp;
  const std::map<std::string, std::string> good = {
      {"general.type", "adapter"}, {"adapter.type", "lora"}, {"general.architecture", "llama"}};
  const std::vector<std::pair<std::string, std::vector<std::int64_t>>> pair = {
      {"blk.0.attn_q.weight.lora_a", {16, 2}}, {"blk.0.attn_q.weight.lora_b", {2, 16}}};
  const auto read = [&](const std::map<std::string, std::string>& kv,
                        const std::vector<std::pair<std::string, std::vector<std::int64_t>>>& t) {
    write_adapter_gguf(tmp / "x.gguf", kv, t);
    return error_of<Error>([&] { read_gguf_lora(tmp / "x.gguf", tiny_llama_config(8), RopeLayout::Interleaved); });
  };
  auto kv = good;
  kv["general.type"] = "model";
  EXPECT_TRUE(mentions(read(kv, pair), {"x.gguf", "'general.type'", "expected \"adapter\"", "\"model\""}));
  kv = good;
  kv["general.architecture"] = "qwen2";
  EXPECT_TRUE(mentions(read(kv, pair), {"'general.architecture'", "qwen2"}));
  kv = good;
  kv.erase("adapter.type");
  EXPECT_TRUE(mentions(read(kv, pair), {"x.gguf", "adapter.type"}));
  EXPECT_TRUE(mentions(read(good, {pair[0]}), {"missing tensor", "blk.0.attn_q.weight.lora_b"}));
  EXPECT_TRUE(mentions(read(good, {pair[0], {"blk.0.attn_q.weight.lora_b", {2, 8}}}),
                       {"blk.0.attn_q.weight.lora_b", "[2, 8]", "expected [2, 16]"}));
  EXPECT_TRUE(mentions(read(good, {{"blk.0.attn_q.weight.lora_a", {8, 2}}, pair[1]}),
                       {"blk.0.attn_q.weight.lora_a", "[8, 2]", "expected [16, r]"}));
  EXPECT_TRUE(mentions(read(good, {pair[0], pair[1], {"blk.0.attn_norm.weight", {16, 1}}}),
                       {"'blk.0.attn_norm.weight'", "not supported"}));
  EXPECT_TRUE(mentions(read(good, {{"blk.2.attn_q.weight.lora_a", {16, 2}}, {"blk.2.attn_q.weight.lora_b", {2, 16}}}),
                       {"blk.2.attn_q.weight.lora_a", "past the model's 2 layers"}));
  // Layer 1 lacks the module layer 0 has.
  EXPECT_TRUE(mentions(read(good, {pair[0], pair[1], {"blk.1.attn_v.weight.lora_a", {16, 2}},
                                   {"blk.1.attn_v.weight.lora_b", {2, 8}}}),
                       {"missing tensor", "blk.0.attn_v.weight.lora_a"}));
}

TEST(GgufLora, TruncatedAndCorruptedFilesFailWithTheFileNamed) {
  TempDir tmp;
  write_gguf_lora(tmp / "good.gguf", tiny_adapter({"q", "down"}), tiny_llama_config(8), RopeLayout::RotateHalf);
  const auto good = test::read_all(tmp / "good.gguf");
  test::Corpus c{tmp};
  const auto load = [](const fs::path& p) { read_gguf_lora(p, tiny_llama_config(8), RopeLayout::RotateHalf); };
  for (std::size_t cut = 0; cut < good.size(); cut += cut < 1200 ? 5 : 97)
    c.run("lora.cut", std::vector<char>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut)), load);
  for (std::size_t i = 0; i < std::min<std::size_t>(1200, good.size()); i += 3) {
    auto b = good;
    b[i] = static_cast<char>(b[i] ^ 0xff);
    c.run("lora.flip", b, load);
  }
  std::printf("[gguf lora corpus] %d corrupt files, %d rejected with a named error\n", c.cases, c.rejected);
  EXPECT_EQ(c.failed, 0);
  EXPECT_GT(c.rejected, c.cases / 2);
}

}  // namespace
}  // namespace pocketlora
