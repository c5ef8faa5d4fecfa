#pragma once
// A PEFT adapter directory (what `pocketlora train` writes, or PEFT's save_pretrained for a Llama model) as the
// LoraAdapter the decoder uploads: read_peft_adapter (host/adapters/peft_export.h) brings lora_B's q/k rows into
// the model's own row order; here the project-named tensors become modules.
#include <filesystem>

#include "host/adapters/peft_export.h"
#include "host/train/lora_adapter.h"

namespace pocketlora {

// InvalidArgument naming the directory and the tensor for a name outside "layers.{i}.{target}.{A|B}", an A
// without its B, or a rank that differs from adapter_config.json's r.
LoraAdapter lora_adapter_from_peft(const PeftAdapter& peft, const std::filesystem::path& dir);
LoraAdapter load_peft_lora_adapter(const std::filesystem::path& dir, const LlamaConfig& model, RopeLayout qk_layout);

}  // namespace pocketlora
