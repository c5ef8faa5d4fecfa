#pragma once
// The identity of the base model a checkpoint or adapter belongs to, cheap enough to compute at every start on a
// phone (a 2 GB file costs ~3 MiB of reads, not a full hash) yet different for another base or another
// quantization:
//   SHA-256 over, for each file of the model in name order (a file: itself; a directory: config.json and every
//   *.safetensors / *.safetensors.index.json / *.gguf / *.bin in it): the file name (not its folder, so a moved
//   model keeps its identity), its size, its first and last 1 MiB (headers: tensor names, dtypes, shapes,
//   quantization types and metadata) and 16 evenly spaced 64 KiB samples of the weights in between (another
//   fine-tune of the same architecture differs there); files up to 3 MiB are hashed whole. Then the base
//   quantization the run holds the linears in ("none", "nf4"), since the same file trained as f32 or NF4 gives
//   different adapters.
// What it does not catch: an edit confined to unsampled bytes of a large file (the trade for not reading 2 GB).
// Spelled "sampled-sha256-v1:<64 hex digits>" so a later scheme can be told apart.
#include <filesystem>
#include <string>
#include <string_view>

namespace pocketlora {

std::string base_model_fingerprint(const std::filesystem::path& model_path, std::string_view base_quant);

}  // namespace pocketlora
