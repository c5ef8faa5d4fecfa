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
#include <string>
#include <utility>
#include <vector>

#include "host/core/op/rope.h"
#include "host/core/tensor.h"
#include "host/model/llama_config.h"

namespace pocketlora {

struct PeftAdapterConfig {
  std::int64_t r = 8;
  double lora_alpha = 16;
  double lora_dropout = 0;
  bool use_rslora = false;
  std::vector<std::string> targets;  // project names: q, k, v, o, gate, up, down
  std::string base_model_name_or_path;
};

struct PeftAdapter {
  PeftAdapterConfig config;
  std::vector<std::pair<std::string, Tensor>> tensors;  // project names, in the model's q/k row order, f32
};

// Every layer of `model` must have A and B for every target, with shapes [r, in] / [out, r] of that linear;
// anything else is a ShapeError/InvalidArgument naming the tensor, expected vs found.
void write_peft_adapter(const std::filesystem::path& dir, const PeftAdapter& adapter, const LlamaConfig& model,
                        RopeLayout qk_layout);

// Reads what write_peft_adapter writes and what PEFT writes for a Llama model (keys with or without PEFT's
// ".default" adapter name). Options this project does not implement (DoRA, bias other than "none",
// fan_in_fan_out, rank_pattern / alpha_pattern, layers_to_transform, modules_to_save) are refused by name.
PeftAdapter read_peft_adapter(const std::filesystem::path& dir, const LlamaConfig& model, RopeLayout qk_layout);

}  // namespace pocketlora
