#pragma once
// A (merged) Llama model written as a Hugging Face checkpoint: DIR/model.safetensors (LlamaForCausalLM names,
// q_proj/k_proj rows in HF's rotate_half order, F32 or F16, metadata {"format": "pt"}) and DIR/config.json, so
// transformers' from_pretrained and this project's loader read it. config.json is `hf_config` (the base's own,
// when the base was an HF checkpoint) with torch_dtype set, or one made from the weights' config.
#include <filesystem>
#include <optional>

#include "host/core/tensor.h"
#include "host/model/llama_weights.h"

namespace pocketlora {

// Each file atomically, the weights before the config. `dtype`: F32 or F16 (norms included, as torch_dtype says).
void write_llama_safetensors(const std::filesystem::path& dir, const LlamaWeights& weights, DType dtype,
                             const std::optional<std::filesystem::path>& hf_config);

}  // namespace pocketlora
