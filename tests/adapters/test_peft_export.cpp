// PEFT adapter export/import: HF key names, shapes and config fields as PEFT writes them, q/k lora_B rows in HF's
// rotate_half order for an interleaved base (row map written out by hand below), exact round trips, PEFT's
// ".default" key variant, and refusals that name the tensor or field.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/adapters/peft_export.h"
#include "adapters/tiny_adapter_fixtures.h"
#include "host/core/error.h"
#include "host/formats/safetensors.h"
#include "host/util/read_file.h"

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

PeftAdapter tiny_adapter(std::vector<std::string> targets) {
  const LlamaConfig m = tiny_llama_config();
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

TEST(PeftExport, KeysShapesAndConfigAsPeftWritesThem) {
  TempDir tmp;
  const auto a = tiny_adapter({"q", "k", "v", "o", "gate", "up", "down"});
  write_peft_adapter(tmp.path(), a, tiny_llama_config(), RopeLayout::RotateHalf);
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
  write_peft_adapter(tmp.path(), a, tiny_llama_config(), RopeLayout::Interleaved);
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
    write_peft_adapter(tmp.path(), a, tiny_llama_config(), layout);
    const auto b = read_peft_adapter(tmp.path(), tiny_llama_config(), layout);
    expect_same_tensors(a, b);
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
  write_peft_adapter(tmp.path(), a, tiny_llama_config(), RopeLayout::Interleaved);
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
  expect_same_tensors(a, read_peft_adapter(tmp.path(), tiny_llama_config(), RopeLayout::Interleaved));
}

TEST(PeftExport, RefusesWhatItCannotWriteNamingTheTensor) {
  TempDir tmp;
  auto a = tiny_adapter({"q", "v"});
  a.tensors.pop_back();  // layers.1.v.B
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { write_peft_adapter(tmp.path(), a, tiny_llama_config(), RopeLayout::Interleaved); }),
                       {"missing LoRA tensor", "layers.1.v.B", "[4, 2]"}));
  a = tiny_adapter({"q", "v"});
  a.tensors[1].second = Tensor::zeros({8, 3});  // layers.0.q.B with rank 3
  EXPECT_TRUE(mentions(error_of<ShapeError>([&] { write_peft_adapter(tmp.path(), a, tiny_llama_config(), RopeLayout::Interleaved); }),
                       {"layers.0.q.B", "[8, 3]", "expected [8, 2]"}));
  a = tiny_adapter({"q", "v"});
  a.config.targets = {"q", "lm_head"};
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { write_peft_adapter(tmp.path(), a, tiny_llama_config(), RopeLayout::Interleaved); }),
                       {"unknown LoRA target", "lm_head"}));
  a = tiny_adapter({"q"});
  a.tensors.emplace_back("layers.0.v.A", Tensor::zeros({2, 8}));
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { write_peft_adapter(tmp.path(), a, tiny_llama_config(), RopeLayout::Interleaved); }),
                       {"unexpected LoRA tensor", "layers.0.v.A"}));
  EXPECT_FALSE(fs::exists(tmp / "adapter_config.json"));
}

TEST(PeftExport, RefusesUnsupportedPeftOptionsByName) {
  TempDir tmp;
  write_peft_adapter(tmp.path(), tiny_adapter({"q", "v"}), tiny_llama_config(), RopeLayout::Interleaved);
  const auto cfg = nlohmann::json::parse(read_file_text(tmp / "adapter_config.json"));
  const auto with = [&](const std::string& key, const nlohmann::json& v) {
    auto c = cfg;
    c[key] = v;
    std::ofstream(tmp / "adapter_config.json") << c.dump(2);
    return error_of<Error>([&] { read_peft_adapter(tmp.path(), tiny_llama_config(), RopeLayout::Interleaved); });
  };
  EXPECT_TRUE(mentions(with("use_dora", true), {"adapter_config.json", "'use_dora'", "not supported"}));
  EXPECT_TRUE(mentions(with("bias", "all"), {"'bias'", "\"all\""}));
  EXPECT_TRUE(mentions(with("fan_in_fan_out", true), {"'fan_in_fan_out'"}));
  EXPECT_TRUE(mentions(with("modules_to_save", {"lm_head"}), {"'modules_to_save'", "lm_head"}));
  EXPECT_TRUE(mentions(with("layer_replication", {{0, 1}}), {"'layer_replication'"}));
  EXPECT_TRUE(mentions(with("layers_pattern", "blocks"), {"'layers_pattern'", "blocks"}));
  EXPECT_TRUE(mentions(with("layers_to_transform", {0, 2}), {"'layers_to_transform'", "layer 2"}));
  EXPECT_TRUE(mentions(with("rank_pattern", {{"q_proj", 0}}), {"'rank_pattern'", "q_proj", ">= 1"}));
  EXPECT_TRUE(mentions(with("alpha_pattern", {{"(q_proj", 8}}), {"'alpha_pattern'", "(q_proj", "regex"}));
  EXPECT_TRUE(mentions(with("rank_pattern", {{"*q_proj", 4}}), {"'rank_pattern'", "*q_proj", "not a supported pattern"}));
  EXPECT_TRUE(mentions(with("rank_pattern", {{"(a*)*b", 4}}), {"'rank_pattern'", "(a*)*b", "not a supported pattern"}));
  // rank_pattern applies: q's tensors must now have rank 4.
  EXPECT_TRUE(mentions(with("rank_pattern", {{"q_proj", 4}}), {"layers.0.q.A", "[2, 8]", "expected [4, 8]"}));
  EXPECT_TRUE(mentions(with("peft_type", "IA3"), {"'peft_type'", "expected \"LORA\"", "IA3"}));
  EXPECT_TRUE(mentions(with("target_modules", {"q_proj"}), {"v_proj", "not in target_modules"}));
  EXPECT_TRUE(mentions(with("target_modules", "q_proj|v_proj"), {"'target_modules'", "regex"}));
  EXPECT_TRUE(mentions(with("r", 4), {"adapter_model.safetensors", "layers.0.q.A", "[2, 8]", "expected [4, 8]"}));
  // Another model's adapter: more layers than this model has.
  std::ofstream(tmp / "adapter_config.json") << cfg.dump(2);
  LlamaConfig one_layer = tiny_llama_config();
  one_layer.n_layers = 1;
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { read_peft_adapter(tmp.path(), one_layer, RopeLayout::Interleaved); }),
                       {"layers.1.", "past the model's 1 layers"}));
}

// A PEFT directory built here without the writer under test: the config JSON as text, the weights under PEFT's
// keys. Each tensor (row, col) = salt·1000 + row·10 + col with salt counting up from 1 in the order given.
void write_hand_built_peft(const fs::path& dir, const std::string& config_json,
                           const std::vector<std::pair<std::string, Shape>>& tensors) {
  std::vector<std::pair<std::string, Tensor>> entries;
  int salt = 1;
  for (const auto& [key, shape] : tensors) entries.emplace_back(key, labelled(shape, salt++));
  write_safetensors(dir / "adapter_model.safetensors", entries, {{"format", "pt"}});
  std::ofstream(dir / "adapter_config.json") << config_json;
}

TEST(PeftImport, RankAndAlphaPatternsPerModuleInFileOrder) {
  TempDir tmp;
  // The first matching key in file order wins (PEFT's get_pattern_key): layer 1's q_proj gets rank 1 from the
  // full-name key before "self_attn.*q_proj" (rank 3) that matches every q_proj; v_proj keeps r = 2.
  write_hand_built_peft(tmp.path(), R"({"peft_type": "LORA", "r": 2, "lora_alpha": 16, "use_rslora": false,
      "target_modules": ["v_proj", "q_proj"],
      "rank_pattern": {"model.layers.1.self_attn.q_proj": 1, "self_attn.*q_proj": 3},
      "alpha_pattern": {"layers.0.self_attn.v_proj": 4}})",
                        {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", {3, 8}},
                         {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", {8, 3}},
                         {"base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight", {2, 8}},
                         {"base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight", {4, 2}},
                         {"base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight", {1, 8}},
                         {"base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight", {8, 1}},
                         {"base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight", {2, 8}},
                         {"base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight", {4, 2}}});
  const auto a = read_peft_adapter(tmp.path(), tiny_llama_config(), RopeLayout::RotateHalf);
  EXPECT_EQ(a.config.targets, (std::vector<std::string>{"q", "v"}));
  EXPECT_EQ(a.config.rank_of("layers.0.q"), 3);
  EXPECT_EQ(a.config.rank_of("layers.1.q"), 1);
  EXPECT_EQ(a.config.rank_of("layers.0.v"), 2);
  EXPECT_EQ(a.config.alpha_of("layers.0.v"), 4);
  EXPECT_EQ(a.config.alpha_of("layers.1.v"), 16);
  EXPECT_DOUBLE_EQ(a.config.scale_of("layers.0.q"), 16.0 / 3);
  EXPECT_DOUBLE_EQ(a.config.scale_of("layers.0.v"), 4.0 / 2);
  EXPECT_DOUBLE_EQ(a.config.scale_of("layers.1.q"), 16.0 / 1);
  EXPECT_EQ(find(a, "layers.1.q.B").shape(), (Shape{8, 1}));
  EXPECT_EQ(find(a, "layers.1.q.B").data<float>()[7], 6070.f);  // salt 6, row 7, col 0; rotate_half: not permuted
  EXPECT_EQ(find(a, "layers.0.v.A").data<float>()[1 * 8 + 5], 3015.f);

  // rsLoRA scales by alpha / sqrt(r) of the module.
  auto cfg = nlohmann::json::parse(read_file_text(tmp / "adapter_config.json"));
  cfg["use_rslora"] = true;
  std::ofstream(tmp / "adapter_config.json") << cfg.dump();
  EXPECT_DOUBLE_EQ(read_peft_adapter(tmp.path(), tiny_llama_config(), RopeLayout::RotateHalf).config.scale_of("layers.0.q"),
                   16.0 / std::sqrt(3.0));
}

TEST(PeftImport, LayersToTransformAdaptsOnlyTheListedLayers) {
  TempDir tmp;
  for (const char* layers : {"1", "[1]"}) {
    write_hand_built_peft(tmp.path(),
                          std::string(R"({"peft_type": "LORA", "r": 2, "lora_alpha": 8, "target_modules": ["down_proj"],
                                          "layers_pattern": "layers", "layers_to_transform": )") + layers + "}",
                          {{"base_model.model.model.layers.1.mlp.down_proj.lora_A.default.weight", {2, 12}},
                           {"base_model.model.model.layers.1.mlp.down_proj.lora_B.default.weight", {8, 2}}});
    const auto a = read_peft_adapter(tmp.path(), tiny_llama_config(), RopeLayout::Interleaved);
    EXPECT_EQ(a.config.layers, (std::vector<std::int64_t>{1})) << layers;
    EXPECT_FALSE(a.config.adapts_layer(0));
    ASSERT_EQ(a.tensors.size(), 2u);
    EXPECT_EQ(a.tensors[0].first, "layers.1.down.A");
    EXPECT_EQ(a.tensors[1].first, "layers.1.down.B");
    EXPECT_EQ(a.tensors[1].second.data<float>()[5 * 2 + 1], 2051.f);
  }
  // A tensor of a layer not listed is refused by name.
  write_hand_built_peft(tmp.path(), R"({"peft_type": "LORA", "r": 2, "lora_alpha": 8, "target_modules": ["down_proj"],
                                        "layers_to_transform": [1]})",
                        {{"base_model.model.model.layers.0.mlp.down_proj.lora_A.weight", {2, 12}},
                         {"base_model.model.model.layers.0.mlp.down_proj.lora_B.weight", {8, 2}},
                         {"base_model.model.model.layers.1.mlp.down_proj.lora_A.weight", {2, 12}},
                         {"base_model.model.model.layers.1.mlp.down_proj.lora_B.weight", {8, 2}}});
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { read_peft_adapter(tmp.path(), tiny_llama_config(), RopeLayout::Interleaved); }),
                       {"layers.0.mlp.down_proj.lora_A.weight", "not in layers_to_transform"}));
}

TEST(PeftImport, AllLinearTargetsEverySevenLinears) {
  TempDir tmp;
  std::vector<std::pair<std::string, Shape>> tensors;
  const std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> linears = {
      {"self_attn.q_proj", 8, 8}, {"self_attn.k_proj", 4, 8}, {"self_attn.v_proj", 4, 8}, {"self_attn.o_proj", 8, 8},
      {"mlp.gate_proj", 12, 8},   {"mlp.up_proj", 12, 8},     {"mlp.down_proj", 8, 12}};
  for (int i = 0; i < 2; ++i)
    for (const auto& [path, out, in] : linears) {
      // Appended piecewise: GCC 12 reports a bogus -Warray-bounds on literal + to_string(i) + ... when this TU is
      // built with a precompiled header (the aarch64 build).
      std::string p = "base_model.model.model.layers.";
      p += std::to_string(i);
      p += '.';
      p += path;
      tensors.push_back({p + ".lora_A.weight", {1, in}});
      tensors.push_back({p + ".lora_B.weight", {out, 1}});
    }
  write_hand_built_peft(tmp.path(), R"({"peft_type": "LORA", "r": 1, "lora_alpha": 2, "target_modules": "all-linear"})",
                        tensors);
  const auto a = read_peft_adapter(tmp.path(), tiny_llama_config(), RopeLayout::Interleaved);
  EXPECT_EQ(a.config.targets, (std::vector<std::string>{"q", "k", "v", "o", "gate", "up", "down"}));
  EXPECT_EQ(a.tensors.size(), 28u);
}

TEST(PeftExport, PerModuleRanksAlphasAndLayersRoundTrip) {
  TempDir tmp;
  PeftAdapter a;
  a.config.r = 2;
  a.config.lora_alpha = 16;
  a.config.targets = {"q", "down"};
  a.config.layers = {1};
  a.config.module_r = {{"layers.1.q", 3}};
  a.config.module_alpha = {{"layers.1.down", 5.5}};
  a.tensors = {{"layers.1.q.A", labelled({3, 8}, 1)}, {"layers.1.q.B", labelled({8, 3}, 2)},
               {"layers.1.down.A", labelled({2, 12}, 3)}, {"layers.1.down.B", labelled({8, 2}, 4)}};
  write_peft_adapter(tmp.path(), a, tiny_llama_config(), RopeLayout::Interleaved);
  const auto cfg = nlohmann::json::parse(read_file_text(tmp / "adapter_config.json"));
  EXPECT_EQ(cfg["rank_pattern"], nlohmann::json({{"layers.1.self_attn.q_proj", 3}}));
  EXPECT_EQ(cfg["alpha_pattern"], nlohmann::json({{"layers.1.mlp.down_proj", 5.5}}));
  EXPECT_EQ(cfg["layers_to_transform"], nlohmann::json({1}));
  const auto b = read_peft_adapter(tmp.path(), tiny_llama_config(), RopeLayout::Interleaved);
  expect_same_tensors(a, b);
  EXPECT_EQ(b.config.module_r, a.config.module_r);
  EXPECT_EQ(b.config.module_alpha, a.config.module_alpha);
  EXPECT_EQ(b.config.layers, a.config.layers);

  a.config.module_r = {{"layers.0.q", 3}};  // layer 0 is not adapted
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { write_peft_adapter(tmp.path(), a, tiny_llama_config(), RopeLayout::Interleaved); }),
                       {"rank given for 'layers.0.q'", "not adapted"}));
}

}  // namespace
}  // namespace pocketlora
