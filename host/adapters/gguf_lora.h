#pragma once
// LoRA adapters in llama.cpp's GGUF adapter format, as convert_lora_to_gguf.py writes them and
// llama_adapter_lora_init (src/llama-adapter.cpp) reads them (`llama-cli --lora FILE`):
//   metadata  general.architecture = "llama", general.type = "adapter", adapter.type = "lora",
//             adapter.lora.alpha (f32; llama.cpp scales each pair by alpha / rank, rank = lora_b ne[0]; 0 = 1)
//   tensors   blk.{i}.{attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down}.weight.lora_a  ne [in, r]
//             blk.{i}.{...}.weight.lora_b  ne [r, out]   (PEFT's A [r, in] / B [out, r], row-major: the same bytes)
//             F32 or F16 (the reader takes any type GgufFile dequantizes, e.g. Q8_0 from --outtype q8_0)
// Row order: llama.cpp's GGUF base keeps q/k rows interleaved for its RoPE (convert_hf_to_gguf permutes
// q_proj/k_proj, and convert_lora_to_gguf applies the same permute to lora_B's rows), so lora_b rows of q and k
// are in the interleaved order whatever the model's recorded layout.
// Scale: one alpha per file. A module whose scale is not lora_alpha / r (rsLoRA, alpha_pattern) gets the ratio
// folded into its B on export, so llama.cpp applies the same s·B·A; such a file re-imports as plain LoRA.
#include <filesystem>

#include "host/adapters/peft_export.h"
#include "host/core/op/rope.h"
#include "host/core/tensor.h"
#include "host/model/llama_config.h"

namespace pocketlora {

// `dtype`: F32 or F16. The adapter is checked against `model` first (check_peft_adapter). Written atomically.
void write_gguf_lora(const std::filesystem::path& path, const PeftAdapter& adapter, const LlamaConfig& model,
                     RopeLayout qk_layout, DType dtype = DType::F32);

// Tensors in the project's names and `qk_layout` row order, f32. Every adapted layer must carry the same set of
// modules; r is the first module's rank, other ranks go to module_r. Errors name the file and the key or tensor.
PeftAdapter read_gguf_lora(const std::filesystem::path& path, const LlamaConfig& model, RopeLayout qk_layout);

}  // namespace pocketlora
