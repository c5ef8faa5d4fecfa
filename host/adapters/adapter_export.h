#pragma once
// `pocketlora export`: an adapter (PEFT directory or GGUF LoRA file) for a base model, written as
//   peft    a PEFT directory (adapter_model.safetensors + adapter_config.json)
//   gguf    a llama.cpp GGUF LoRA file (--dtype f32 | f16)
//   merged  the base with the adapter merged in (W + s·B·A in f64, rounded once):
//             --dtype f32 | f16 and --out not ending in .gguf: a Hugging Face directory (model.safetensors +
//                                                             config.json)
//             --dtype f32 | f16 | q8_0 | q4_0 | q4_k_m and --out FILE.gguf: a llama.cpp GGUF (tokenizer metadata
//                                                             copied from the base when the base is a GGUF)
//             --dtype nf4: a bitsandbytes 4-bit checkpoint (--out DIR or FILE.safetensors, config.json beside it)
// The base may be any checkpoint the loader reads; a bnb-4bit base is dequantized first (the weights its QLoRA
// forward computes with), so a merged f32/f16 model is exactly base + adapter, and a merged NF4 re-quantizes.
// Every file is written atomically.
#include <filesystem>
#include <string>

#include "host/adapters/peft_export.h"

namespace pocketlora {

enum class ExportFormat { Peft, Gguf, Merged };
ExportFormat parse_export_format(const std::string& s);  // "peft", "gguf", "merged"

struct ExportOptions {
  std::filesystem::path model, adapter, out;
  ExportFormat format = ExportFormat::Peft;
  std::string dtype = "f32";
};

// What was written: the path and a one-line description ("merged GGUF Q4_K_M, 48 tensors").
struct ExportResult {
  std::filesystem::path path;
  std::string description;
};

// A PEFT directory or a GGUF LoRA file (by what the path is), tensors in `qk_layout` row order.
PeftAdapter read_lora_adapter(const std::filesystem::path& path, const LlamaConfig& model, RopeLayout qk_layout);

// Checks every option before writing anything; errors name the option and the accepted values.
ExportResult export_adapter(const ExportOptions& opt);

}  // namespace pocketlora
