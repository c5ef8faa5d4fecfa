#pragma once
// llama2.c checkpoints (karpathy/llama2.c): the legacy v0 format written by run.c-era export (7 int32 header
// fields, negative vocab_size = untied classifier follows, then f32 weights in a fixed order) and the version 1
// fp32 format of export.py (magic "ak42", version 1, 256-byte header).
#include <filesystem>

#include "host/model/llama_weights.h"

namespace pocketlora {

LlamaWeights load_llama2c(const std::filesystem::path& path);
// The same checkpoint validated, its tensors not read (LlamaWeightSource).
LlamaWeightSource open_llama2c(const std::filesystem::path& path);
bool looks_like_llama2c_v1(const std::filesystem::path& path);

}  // namespace pocketlora
