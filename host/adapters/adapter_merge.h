#pragma once
// Merging a LoRA adapter into its base: W' = W + s·B·A for every adapted linear (s = the module's scale: alpha/r,
// alpha/sqrt(r) with rsLoRA, per-module rank/alpha), summed in f64 and rounded once to f32, so the merged
// model's linear outputs equal x·Wᵀ + s·(x·Aᵀ)·Bᵀ up to that rounding.
#include "host/adapters/peft_export.h"
#include "host/model/llama_weights.h"

namespace pocketlora {

// `weights` as load_llama_weights returns them (f32, q/k rows interleaved); `adapter` in the same row order
// (read with RopeLayout::Interleaved). The adapter is checked against weights.config first; a non-finite merged
// value is a NumericError naming the tensor.
void merge_lora_into(LlamaWeights& weights, const PeftAdapter& adapter);

}  // namespace pocketlora
