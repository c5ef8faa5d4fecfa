// PEFT adapter export/import: HF key names, shapes and config fields as PEFT writes them, q/k lora_B rows in HF's
// rotate_half order for an interleaved base (row map written out by hand below), exact round trips, PEFT's
// ".default" key variant, and refusals that name the tensor or field.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/adapters/peft_export.h"
#include "host/core/error.h"
#include "host/formats/safetensors.h"
#include "host/util/read_file.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::mentions;
using test::TempDir;

// 2 layers, dim 8, 2 query heads and 1 kv head of dim 4, MLP 12.
LlamaConfig tiny_config() {
  LlamaConfig c;
  c.dim = 8, c.hidden_dim = 12, c.n_layers = 2, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 4, c.vocab_size = 16;
  c.max_seq_len = 32;
  return c;
}

// Element (row, col) of tensor `salt` = salt·1000 + row·10 + col: every row is recognisable after a permutation.
Tensor labelled(Shape shape, int salt) {
  Tensor t = Tensor::zeros(shape);
  for (std::int64_t r = 0; r < shape[0]; ++r)
    for (std::int64_t c = 0; c < shape[1]; ++c) t.data<float>()[r * shape[1] + c] = float(salt * 1000 + r * 10 + c);
  return t;
}

PeftAdapter tiny_adapter(std::vector<std::string> targets) {
  const LlamaConfig m = tiny_config();
  PeftAdapter a;
  a.config.r = 2;
  a.config.lora_alpha = 16;
  a.config.lora_dropout = 0.05;
  a.config.targets = targets;
  a.config.base_model_name_or_path = "stories260K";
  int salt = 1;
  const std::map<std::string, std::pair<std::int64_t, std::int64_t>> out_in = {
      {"q", {8, 8}}, {"k", {4, 8}}, {"v", {4, 8}}, {"o", {8, 8}}, {"gate", {12, 8}}, {"up", {12, 8}}, {"down", {8, 12}}};
  for (int i = 0; i < m.n_layers; ++i)
    for (const auto& t : targets) {
      const auto [out, in] = out_in.at(t);
      const std::string p = "layers." + std::to_string(i) + "." + t + ".";
      a.tensors.emplace_back(p + "A", labelled({2, in}, salt++));
      a.tensors.emplace_back(p + "B", labelled({out, 2}, salt++));
    }
  return a;
}

const Tensor& find(const PeftAdapter& a, const std::string& name) {
  for (const auto& [n, t] : a.tensors)
    if (n == name) return t;
  throw std::runtime_error("no tensor " + name);
}

void expect_equal(const PeftAdapter& a, const PeftAdapter& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [n, t] : a.tensors) {
    const Tensor& u = find(b, n);
    ASSERT_EQ(t.shape(), u.shape()) << n;
    EXPECT_EQ(std::memcmp(t.raw(), u.raw(), t.nbytes()), 0) << n;
  }
}

TEST(PeftExport, KeysShapesAndConfigAsPeftWritesThem) {
  TempDir tmp;
  const auto a = tiny_adapter({"q", "k", "v", "o", "gate", "up", "down"});
  write_peft_adapter(tmp.path(), a, tiny_config(), RopeLayout::RotateHalf);
  const auto f = SafetensorsFile::open(tmp / "adapter_model.safetensors");
  EXPECT_EQ(f.tensors().size(), 2u * 7u * 2u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const std::string p = "base_model.model.model.layers.1.";
  EXPECT_EQ(f.at(p + "self_attn.q_proj.lora_A.weight").shape, (Shape{2, 8}));
  EXPECT_EQ(f.at(p + "self_attn.k_proj.lora_B.weight").shape, (Shape{4, 2}));
  EXPECT_EQ(f.at(p + "mlp.down_proj.lora_A.weight").shape, (Shape{2, 12}));
  EXPECT_EQ(f.at(p + "mlp.gate_proj.lora_B.weight").shape, (Shape{12, 2}));
  EXPECT_EQ(f.at(p + "mlp.up_proj.lora_A.weight").dtype, "F32");
  // PEFT's save_pretrained output: json.dumps(indent=2, sort_keys=True) of LoraConfig's fields.
  EXPECT_EQ(read_file_text(tmp / "adapter_config.json"), R"({
  "alpha_pattern": {},
  "auto_mapping": null,
  "base_model_name_or_path": "stories260K",
  "bias": "none",
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 16,
  "lora_dropout": 0.05,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "r": 2,
  "rank_pattern": {},
  "revision": null,
  "target_modules": [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj"
  ],
  "task_type": "CAUSAL_LM",
  "use_dora": false,
  "use_rslora": false
})");
}

TEST(PeftExport, InterleavedQkRowsGoToRotateHalfOrder) {
  TempDir tmp;
  const auto a = tiny_adapter({"q", "k", "v"});
  write_peft_adapter(tmp.path(), a, tiny_config(), RopeLayout::Interleaved);
  const auto f = SafetensorsFile::open(tmp / "adapter_model.safetensors");
  // head_dim 4: interleaved rows (pair i, member j) = 2i + j; HF row j·2 + i. HF rows 0..3 of each head are
  // interleaved rows 0, 2, 1, 3.
  const std::vector<int> q_rows = {0, 2, 1, 3, 4, 6, 5, 7}, k_rows = {0, 2, 1, 3}, v_rows = {0, 1, 2, 3};
  for (const auto& [module, rows] : {std::pair{"q", q_rows}, std::pair{"k", k_rows}, std::pair{"v", v_rows}}) {
    const std::string path = std::string("base_model.model.model.layers.0.self_attn.") + module + "_proj.";
    const Tensor b = f.tensor(path + "lora_B.weight"), ours = find(a, std::string("layers.0.") + module + ".B");
    for (std::size_t r = 0; r < rows.size(); ++r)
      for (int c = 0; c < 2; ++c)
        EXPECT_EQ(b.data<float>()[r * 2 + c], ours.data<float>()[rows[r] * 2 + c]) << module << " row " << r;
    const Tensor A = f.tensor(path + "lora_A.weight"), ours_a = find(a, std::string("layers.0.") + module + ".A");
    EXPECT_EQ(std::memcmp(A.raw(), ours_a.raw(), ours_a.nbytes()), 0) << module << ": lora_A is never permuted";
  }
}

TEST(PeftExport, RoundTripsExactlyInBothLayouts) {
  for (auto layout : {RopeLayout::Interleaved, RopeLayout::RotateHalf}) {
    TempDir tmp;
    const auto a = tiny_adapter({"q", "k", "o", "down"});
    write_peft_adapter(tmp.path(), a, tiny_config(), layout);
    const auto b = read_peft_adapter(tmp.path(), tiny_config(), layout);
    expect_equal(a, b);
    EXPECT_EQ(b.config.r, 2);
    EXPECT_EQ(b.config.lora_alpha, 16);
    EXPECT_EQ(b.config.lora_dropout, 0.05);
    EXPECT_FALSE(b.config.use_rslora);
    EXPECT_EQ(b.config.targets, (std::vector<std::string>{"q", "k", "o", "down"}));
    EXPECT_EQ(b.config.base_model_name_or_path, "stories260K");
  }
}

TEST(PeftExport, ReadsPeftsDefaultAdapterKeys) {
  TempDir tmp;
  const auto a = tiny_adapter({"q", "v"});
  write_peft_adapter(tmp.path(), a, tiny_config(), RopeLayout::Interleaved);
  // Rewrite the weights with PEFT's adapter name in the keys (".lora_A.default.weight"), as some PEFT versions and
  // tools save them.
  const auto f = SafetensorsFile::open(tmp / "adapter_model.safetensors");
  std::vector<std::pair<std::string, Tensor>> renamed;
  for (const auto& info : f.tensors()) {
    std::string key = info.name;
    key.replace(key.rfind(".weight"), 7, ".default.weight");
    renamed.emplace_back(key, f.tensor(info.name).clone());
  }
  write_safetensors(tmp / "renamed.safetensors", renamed, {{"format", "pt"}});
  fs::rename(tmp / "renamed.safetensors", tmp / "adapter_model.safetensors");
  expect_equal(a, read_peft_adapter(tmp.path(), tiny_config(), RopeLayout::Interleaved));
}

TEST(PeftExport, RefusesWhatItCannotWriteNamingTheTensor) {
  TempDir tmp;
  auto a = tiny_adapter({"q", "v"});
  a.tensors.pop_back();  // layers.1.v.B
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { write_peft_adapter(tmp.path(), a, tiny_config(), RopeLayout::Interleaved); }),
                       {"missing LoRA tensor", "layers.1.v.B", "[4, 2]"}));
  a = tiny_adapter({"q", "v"});
  a.tensors[1].second = Tensor::zeros({8, 3});  // layers.0.q.B with rank 3
  EXPECT_TRUE(mentions(error_of<ShapeError>([&] { write_peft_adapter(tmp.path(), a, tiny_config(), RopeLayout::Interleaved); }),
                       {"layers.0.q.B", "[8, 3]", "expected [8, 2]"}));
  a = tiny_adapter({"q", "v"});
  a.config.targets = {"q", "lm_head"};
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { write_peft_adapter(tmp.path(), a, tiny_config(), RopeLayout::Interleaved); }),
                       {"unknown LoRA target", "lm_head"}));
  a = tiny_adapter({"q"});
  a.tensors.emplace_back("layers.0.v.A", Tensor::zeros({2, 8}));
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { write_peft_adapter(tmp.path(), a, tiny_config(), RopeLayout::Interleaved); }),
                       {"unexpected LoRA tensor", "layers.0.v.A"}));
  EXPECT_FALSE(fs::exists(tmp / "adapter_config.json"));
}

TEST(PeftExport, RefusesUnsupportedPeftOptionsByName) {
  TempDir tmp;
  write_peft_adapter(tmp.path(), tiny_adapter({"q", "v"}), tiny_config(), RopeLayout::Interleaved);
  const auto cfg = nlohmann::json::parse(read_file_text(tmp / "adapter_config.json"));
  const auto with = [&](const std::string& key, const nlohmann::json& v) {
    auto c = cfg;
    c[key] = v;
    std::ofstream(tmp / "adapter_config.json") << c.dump(2);
    return error_of<Error>([&] { read_peft_adapter(tmp.path(), tiny_config(), RopeLayout::Interleaved); });
  };
  EXPECT_TRUE(mentions(with("use_dora", true), {"adapter_config.json", "'use_dora'", "not supported"}));
  EXPECT_TRUE(mentions(with("bias", "all"), {"'bias'", "\"all\""}));
  EXPECT_TRUE(mentions(with("fan_in_fan_out", true), {"'fan_in_fan_out'"}));
  EXPECT_TRUE(mentions(with("rank_pattern", {{"q_proj", 4}}), {"'rank_pattern'"}));
  EXPECT_TRUE(mentions(with("peft_type", "IA3"), {"'peft_type'", "expected \"LORA\"", "IA3"}));
  EXPECT_TRUE(mentions(with("target_modules", {"q_proj"}), {"v_proj", "not in target_modules"}));
  EXPECT_TRUE(mentions(with("target_modules", "q_proj|v_proj"), {"'target_modules'", "regex"}));
  EXPECT_TRUE(mentions(with("r", 4), {"adapter_model.safetensors", "layers.0.q.A", "[2, 8]", "expected [4, 8]"}));
  // Another model's adapter: more layers than this model has.
  std::ofstream(tmp / "adapter_config.json") << cfg.dump(2);
  LlamaConfig one_layer = tiny_config();
  one_layer.n_layers = 1;
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { read_peft_adapter(tmp.path(), one_layer, RopeLayout::Interleaved); }),
                       {"layers.1.", "past the model's 1 layers"}));
}

}  // namespace
}  // namespace pocketlora
