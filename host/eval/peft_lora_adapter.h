#pragma once
// A PEFT adapter directory as the LoraAdapter the step engine runs (host/train/lora_adapter.h). read_peft_adapter
// checks names and shapes against the model and puts q/k rows in the model's order; this only regroups the tensors
// into modules (by layer, then targets in canonical order, as init_lora_adapter lays them out), each with its own
// rank and alpha where rank_pattern / alpha_pattern set them, and none in layers outside layers_to_transform.
#include <filesystem>

#include "host/adapters/peft_export.h"
#include "host/model/llama_model.h"
#include "host/train/lora_adapter.h"

namespace pocketlora {

LoraAdapter lora_adapter_from_peft(const PeftAdapter& peft, const LlamaModel& model);

// read_peft_adapter(dir) for `model`, then the above.
LoraAdapter load_peft_lora_adapter(const std::filesystem::path& dir, const LlamaModel& model);

}  // namespace pocketlora
