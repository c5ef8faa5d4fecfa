#pragma once
// LoRA adapters in Hugging Face PEFT's format, as PEFT's save_pretrained writes them:
//   adapter_model.safetensors  F32 tensors "base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_A.weight"
//                              [r, in] and ".lora_B.weight" [out, r] (mlp.{gate,up,down}_proj likewise), metadata
//                              {"format": "pt"}
//   adapter_config.json        PEFT's LoraConfig fields (the set PEFT 0.10-0.13 writes; later versions read it and
//                              fill their newer fields with defaults), keys sorted, indent 2, as json.dumps does
// The project names adapter tensors "layers.{i}.{q|k|v|o|gate|up|down}.{A|B}" (A [r, in], B [out, r]).
//
// Row order: HF's q_proj/k_proj rows are in rotate_half order. A model whose q/k rows are interleaved
// (RopeLayout::Interleaved: every plain base, whichever file it came from) produces q/k LoRA outputs in that
// order too, so lora_B's rows of q and k are permuted to HF's order on export and back on import (the same
// permutation host/model applies to the base weights); lora_A (input side) is never permuted. A model kept in
// rotate_half order (NF4 read from a bnb-4bit checkpoint) needs no permutation.
//
// Writing: each file atomically (host/util/atomic_file.h), the weights before the config, so the directory may be
// a run's --out directory shared with checkpoints and metrics; a kill leaves the previous pair or the new weights
// beside a config of the same run (the LoRA config does not change within a run).
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "host/core/op/rope.h"
#include "host/core/tensor.h"
#include "host/model/llama_config.h"

namespace pocketlora {

// The two files of a PEFT adapter directory (also what the adapter store keeps per adapter).
inline constexpr const char* kPeftWeightsFile = "adapter_model.safetensors";
inline constexpr const char* kPeftConfigFile = "adapter_config.json";

struct PeftAdapterConfig {
  std::int64_t r = 8;
  double lora_alpha = 16;
  double lora_dropout = 0;
  bool use_rslora = false;
  std::vector<std::string> targets;  // project names: q, k, v, o, gate, up, down
  std::string base_model_name_or_path;
  // PEFT's per-module exceptions (rank_pattern / alpha_pattern), resolved to project module names ("layers.3.q");
  // a module not listed has r / lora_alpha.
  std::map<std::string, std::int64_t> module_r;
  std::map<std::string, double> module_alpha;
  // PEFT's layers_to_transform: the adapted layers, ascending; empty = every layer.
  std::vector<std::int64_t> layers;

  std::int64_t rank_of(const std::string& module) const;
  double alpha_of(const std::string& module) const;
  double scale_of(const std::string& module) const;  // alpha / r, or alpha / sqrt(r) with rsLoRA
  bool adapts_layer(std::int64_t layer) const;
};

struct PeftAdapter {
  PeftAdapterConfig config;
  std::vector<std::pair<std::string, Tensor>> tensors;  // project names, in the model's q/k row order, f32
};

// Checks `adapter` against `model` as write_peft_adapter does (config values, targets, adapted layers, every
// tensor present with its module's shape); errors start with `origin`.
void check_peft_adapter(const PeftAdapter& adapter, const LlamaConfig& model, const std::string& origin);

// Every adapted layer of `model` must have A and B for every target, with shapes [r, in] / [out, r] of that
// linear (r of that module); anything else is a ShapeError/InvalidArgument naming the tensor, expected vs found.
// Per-module ranks/alphas are written as rank_pattern / alpha_pattern keyed "layers.{i}.self_attn.q_proj" (a key
// every PEFT version matches against the module's full name, and no other module's).
void write_peft_adapter(const std::filesystem::path& dir, const PeftAdapter& adapter, const LlamaConfig& model,
                        RopeLayout qk_layout);

// Reads what write_peft_adapter writes and what PEFT writes for a Llama model: keys with or without PEFT's
// ".default" adapter name; target_modules as a list or "all-linear"; rank_pattern / alpha_pattern (each key
// matched as PEFT does: the first key K, in file order, whose regex (.*\.)?(K)$ matches the module's full name
// "model.layers.{i}.self_attn.q_proj"; keys limited to name characters, '.' and '.*', as std::regex backtracks);
// layers_to_transform (an int or a list; only those layers have tensors).
// Options this project does not implement (DoRA, bias other than "none", fan_in_fan_out, modules_to_save,
// layer_replication, a layers_pattern other than "layers", a regex target_modules) are refused by name.
PeftAdapter read_peft_adapter(const std::filesystem::path& dir, const LlamaConfig& model, RopeLayout qk_layout);

}  // namespace pocketlora
