#pragma once
// The AdapterBase (host/adapters/adapter_store.h) of a loaded model, for importing an adapter into the store or
// checking one before it is applied: the model's configuration and q/k row layout, and its base fingerprint
// (host/train/base_fingerprint.h) for `base_quant`, the quantization the adapter was trained with (an adapter's
// AdapterManifest::base_quant) rather than the one the model is held in now: an NF4-trained adapter is for the
// same file whether it is then applied to an NF4 or an f32 copy.
//
//   AdapterStore store(root);
//   const AdapterManifest m = store.show(name);
//   const PeftAdapter a = store.load(name, adapter_base(model, model_path, m.base_quant), force);
#include <filesystem>
#include <string>

#include "host/adapters/adapter_store.h"
#include "host/model/llama_model.h"

namespace pocketlora {

// `base_quant`: "nf4" or "none" ("f32" is read as "none"); InvalidArgument otherwise.
AdapterBase adapter_base(const LlamaModel& model, const std::filesystem::path& model_path,
                         const std::string& base_quant);

}  // namespace pocketlora
