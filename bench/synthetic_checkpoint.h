#pragma once
// Synthetic checkpoints in the shapes of a real 1B model (bench/synthetic_llama.h), written in each base format the
// loader reads — for measuring what loading and uploading each format costs in host memory (`bench load`), where
// only shapes and formats matter, not values.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/synthetic_llama.h"

namespace pocketlora::bench {

// safetensors-f32 / safetensors-f16 (an HF directory with config.json), gguf-q8_0 / gguf-q4_0 (2-D tensors
// quantized, norms f32), bnb4bit (an HF directory of NF4 linears quantized from the f16 checkpoint, as `pocketlora
// quantize` writes it), llama2c (version 1, f32).
const std::vector<std::string>& synthetic_checkpoint_formats();

// Writes `format` under `dir` unless it is there already; returns the path to load (a file or a directory).
std::filesystem::path write_synthetic_checkpoint(const SyntheticSpec& spec, std::int64_t layers, std::int64_t vocab,
                                                 const std::string& format, const std::filesystem::path& dir);

}  // namespace pocketlora::bench
