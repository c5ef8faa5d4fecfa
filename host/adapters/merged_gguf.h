#pragma once
// A (merged) Llama model written as a llama.cpp GGUF: F32, F16 or quantized Q8_0 / Q4_0 / Q4_K_M with
// llama-quantize's per-tensor type choice (llama_tensor_get_type in src/llama-quant.cpp, no importance matrix):
//   all types   1-D tensors (norms, rope_freqs) stay F32; output.weight is Q6_K unless the file type is Q8_0
//               (Q8_0 when its rows are not a multiple of 256)
//   Q4_K_M      Q4_K, except attn_v.weight and ffn_down.weight of the layers use_more_bits picks (the first and
//               last eighth and every third between), which are Q6_K
//   rows that do not fit the chosen block size fall back as llama.cpp does (Q4_K -> Q5_0, Q6_K -> Q8_0), then to
//               F16 (llama.cpp refuses such a tensor for Q8_0 / Q4_0; F16 keeps the file loadable)
// Metadata: general.* and llama.* from the config (Llama 3 RoPE scaling as rope_freqs.weight, as
// convert_hf_to_gguf writes it), and every tokenizer.* key copied from `tokenizer_gguf` when given.
#include <filesystem>
#include <optional>
#include <string>

#include "host/formats/gguf.h"
#include "host/formats/gguf_writer.h"
#include "host/model/llama_weights.h"

namespace pocketlora {

// llama.cpp's llama_ftype values for the types written here (general.file_type).
enum class GgufFileType : std::uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 7, Q4_K_M = 15 };
GgufFileType parse_gguf_file_type(const std::string& s);  // "f32", "f16", "q8_0", "q4_0", "q4_k_m"

// The ggml type of tensor `name` (a GGUF name, e.g. "blk.3.attn_v.weight") with `row` elements per row
// (ne[0]; 0 for a 1-D tensor) in a model of `n_layers` layers.
GgmlType gguf_tensor_type(GgufFileType ftype, const std::string& name, std::int64_t row, std::int64_t n_layers);

// The llama.* hyperparameters of `c` as llama.cpp reads them (context, widths, heads, RoPE, RMSNorm eps, vocab).
void set_llama_gguf_hparams(GgufWriter& w, const LlamaConfig& c);

// Writes `weights` (f32, q/k rows interleaved: GGUF's own order) atomically to `path`.
void write_llama_gguf(const std::filesystem::path& path, const LlamaWeights& weights, GgufFileType ftype,
                      const std::optional<std::filesystem::path>& tokenizer_gguf, const std::string& name);

}  // namespace pocketlora
