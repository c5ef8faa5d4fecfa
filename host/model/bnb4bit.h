#pragma once
// bitsandbytes 4-bit (NF4) Hugging Face checkpoints, as transformers + bitsandbytes save a model loaded with
// BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True):
//   <linear>.weight                                  uint8 [ceil(n/2), 1]   packed NF4 codes
//   <linear>.weight.absmax                           uint8 [blocks]          (float32 without double quant)
//   <linear>.weight.quant_map                        float32 [16]            the NF4 codebook
//   <linear>.weight.nested_absmax                    float32 [ceil(blocks/256)]
//   <linear>.weight.nested_quant_map                 float32 [256]           the signed dynamic map
//   <linear>.weight.quant_state.bitsandbytes__nf4    uint8 [..]              json.dumps of {quant_type, blocksize,
//                                                    dtype, shape, nested_blocksize, nested_dtype, nested_offset}
// (one linear's entries and the exact JSON bytes: host/formats/bnb4bit_linear.h)
// Every nn.Linear of the decoder is quantized; embeddings, norms and lm_head stay as stored. config.json carries
// a "quantization_config". Weights keep HF's q/k row order (rotate_half RoPE): the model records that layout
// instead of re-permuting NF4 data.
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "host/core/nf4_quantize.h"
#include "host/core/tensor.h"
#include "host/model/llama_config.h"

namespace pocketlora {

struct Bnb4bitModel {
  LlamaConfig config;
  std::map<std::string, Nf4Quantized> linears;  // HF names, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::map<std::string, Tensor> others;         // embeddings, norms, lm_head (as stored)
  DType compute_dtype = DType::F16;  // quantization_config.bnb_4bit_compute_dtype: F16, BF16 or F32
  RopeLayout qk_layout = RopeLayout::RotateHalf;
};

// One NF4 linear of a checkpoint, validated and not kept: `read` parses its state dict again from the mapped file
// (then drops the file's pages from the resident set), so the whole NF4 base is never held on the host at once.
struct DeferredNf4 {
  Shape shape;
  bool double_quant = true;
  std::function<Nf4Quantized()> read;
};

// A bnb-4bit checkpoint with its linears deferred (embeddings, norms, lm_head are views over the mapped file).
struct Bnb4bitSource {
  LlamaConfig config;
  std::map<std::string, DeferredNf4> linears;  // HF names
  std::map<std::string, Tensor> others;        // as stored, views over the mapping
  // Rows [first, first + count) of an `other` converted to f32, their pages then dropped from the resident set
  // (SafetensorsCheckpoint::rows_f32): a table converted a chunk at a time.
  std::function<Tensor(const std::string&, std::int64_t first, std::int64_t count)> rows_f32;
  DType compute_dtype = DType::F16;
  RopeLayout qk_layout = RopeLayout::RotateHalf;
};

// Every linear is read once to validate it (the trainer checks before any work), then dropped.
Bnb4bitSource open_bnb4bit(const std::filesystem::path& path);

// Reads a bnb-4bit checkpoint (file, index or directory with config.json) without re-quantizing anything.
Bnb4bitModel load_bnb4bit(const std::filesystem::path& path);

// Quantizes any supported checkpoint (llama2.c / GGUF / HF safetensors) to a bnb-4bit NF4 safetensors file with
// double quantization, plus config.json (with quantization_config) next to it. Returns the number of linears.
// compute_dtype goes to config.json; each quant_state "dtype" is its source tensor's dtype, as in bitsandbytes.
std::size_t write_bnb4bit(const std::filesystem::path& model_in, const std::filesystem::path& out_safetensors,
                          DType compute_dtype = DType::F16);

// True when the safetensors checkpoint holds bnb-4bit NF4 weights.
bool is_bnb4bit_checkpoint(const std::filesystem::path& path);

}  // namespace pocketlora
