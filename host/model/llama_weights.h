#pragma once
// A Llama checkpoint in one internal form, whichever file it came from: the config plus f32 tensors named as
// Meta's / llama2.c's checkpoints name them, with q/k rows in the INTERLEAVED RoPE layout (pairs (2i, 2i+1) per
// head, as llama2.c and GGUF store them). Hugging Face files store q/k permuted for rotate_half; the loader undoes
// that permutation so every downstream op sees one convention.
//   tok_embeddings [vocab, dim]            norm [dim]                 output [vocab, dim] (= tok_embeddings if tied)
//   layers.{i}.attention_norm [dim]        layers.{i}.ffn_norm [dim]
//   layers.{i}.attention.wq [dim, dim]     .wk / .wv [kv_dim, dim]    .wo [dim, dim]
//   layers.{i}.feed_forward.w1 [hidden, dim] (gate)  .w2 [dim, hidden] (down)  .w3 [hidden, dim] (up)
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "host/core/tensor.h"
#include "host/model/llama_config.h"

namespace pocketlora {

struct LlamaWeights {
  LlamaConfig config;
  std::map<std::string, Tensor> tensors;
  ModelSource source = ModelSource::Llama2c;  // Llama2c, Gguf or Safetensors
  // Tensors are converted to f32 on load; this records the float type each was stored as (F16/BF16; absent: F32
  // or a quantized GGUF type), which bnb-4bit records as the quantized tensor's dtype.
  std::map<std::string, DType> stored_dtype;

  const Tensor& at(const std::string& name) const;  // FormatError naming the tensor if absent
};

// One tensor of a checkpoint not read yet: its shape (as LlamaWeights holds it) and `read_rows`, which converts
// rows [first, first + count) of it (the outermost dimension; a 1-D tensor's elements) from the mapped file to
// f32 (q/k rows interleaved) and drops their file pages from the resident set again. Reading costs the rows' f32
// bytes, not the model's — a table is converted a chunk at a time; `read_rows` keeps the mapping alive.
struct DeferredTensor {
  Shape shape;
  std::function<Tensor(std::int64_t first, std::int64_t count)> read_rows;
  Tensor read() const { return read_rows(0, shape.empty() ? 0 : shape[0]); }  // the whole tensor
};

// A checkpoint opened, validated (header, config, every tensor's presence, dtype and shape) and not read: what a
// loader that converts one tensor at a time starts from (load_llama_model). `tensors` has every LlamaWeights
// name; a tied output is absent from it (tied_output).
struct LlamaWeightSource {
  LlamaConfig config;
  ModelSource source = ModelSource::Llama2c;
  std::map<std::string, DeferredTensor> tensors;
  std::map<std::string, DType> stored_dtype;  // as LlamaWeights::stored_dtype
  bool tied_output = false;                   // "output" reads as tok_embeddings

  const DeferredTensor& at(const std::string& name) const;  // FormatError naming the tensor if absent
};

LlamaWeightSource open_llama_weights(const std::filesystem::path& path);

// Detects the format (GGUF magic, safetensors file/directory/index, llama2.c .bin) and loads; quantized GGUF
// tensors are dequantized to f32. Every tensor's shape is checked against the config; errors name the file, the
// tensor and the expected shape. Every tensor of open_llama_weights, read.
LlamaWeights load_llama_weights(const std::filesystem::path& path);

// q/k row permutation between the interleaved layout and HF's rotate_half layout (rows of one projection with
// `heads` heads of `head_dim`): HF row h*d + j*d/2 + i  <->  interleaved row h*d + 2i + j.
Tensor permute_rows_hf_to_interleaved(const Tensor& w, std::int64_t heads, std::int64_t head_dim);
Tensor permute_rows_interleaved_to_hf(const Tensor& w, std::int64_t heads, std::int64_t head_dim);

}  // namespace pocketlora
