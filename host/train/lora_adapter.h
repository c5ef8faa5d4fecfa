#pragma once
// The host-side LoRA adapter of a Llama model: for each layer and each targeted linear W [out, in], A f32 [r, in]
// and B f32 [out, r] with PEFT's initialisation (A ~ kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)),
// B = 0), so an untrained adapter leaves the model exactly as it was.
//
// Row layout: B's rows are W's output features in the order the loaded model holds them. For q and k that is the
// model's recorded RoPE layout (`qk_layout`): interleaved pairs for llama2.c / GGUF / plain HF weights (permuted
// at load), rotate_half for bnb-4bit checkpoints. Exporting to HF order permutes B's rows of q and k when
// qk_layout is Interleaved; A's columns (input features) are never permuted.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "host/core/op/rope.h"
#include "host/core/tensor.h"
#include "host/model/llama_config.h"
#include "host/train/lora_config.h"

namespace pocketlora {

struct LoraModule {
  std::int64_t layer = 0;
  LoraTarget target = LoraTarget::Q;
  Tensor a;  // f32 [r, in]
  Tensor b;  // f32 [out, r]
  // PEFT's rank_pattern / alpha_pattern: this module's own rank and alpha where they differ from the adapter's
  // (read from PEFT files for generate/eval; the trainer never sets them).
  std::optional<std::int64_t> rank;
  std::optional<float> alpha;
  std::string name() const;  // "layers.3.q" (tensors "layers.3.q.A" / "layers.3.q.B")
  std::string tensor_name(char which) const { return name() + "." + which; }  // which: 'A' or 'B'
};

// {out, in} of target t's base linear in a model of config c.
std::pair<std::int64_t, std::int64_t> lora_target_shape(const LlamaConfig& c, LoraTarget t);

struct LoraAdapter {
  LoraConfig config;
  RopeLayout qk_layout = RopeLayout::Interleaved;
  std::vector<LoraModule> modules;  // by layer, then targets in canonical order; layers may be left out

  // A module's rank and scale (alpha / r, or alpha / sqrt(r) with rsLoRA): its own where set, else the config's.
  std::int64_t rank_of(const LoraModule& m) const { return m.rank.value_or(config.rank); }
  float scale_of(const LoraModule& m) const;

  // The module of (layer, target), or nullptr when that linear is not adapted.
  const LoraModule* find(std::int64_t layer, LoraTarget t) const;
  LoraModule* find(std::int64_t layer, LoraTarget t);
};

// A fresh adapter for `model_config` (validates `config` first). A comes from splitmix64 keyed by (seed, layer,
// target), so the same seed gives the same A on every platform and adding a target leaves the others unchanged.
LoraAdapter init_lora_adapter(const LlamaConfig& model_config, RopeLayout qk_layout, const LoraConfig& config,
                              std::uint64_t seed);

}  // namespace pocketlora
