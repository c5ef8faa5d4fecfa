#pragma once
// The Llama forward pass, written once over the Backend interface (host/backend/backend.h): the same code runs
// on the CPU backend and the Vulkan backend. The trainer's block forward/backward grows from this file.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/llama_model.h"

namespace pocketlora {

// A frozen base linear resident on a backend: plain f32 or NF4.
struct BackendLinear {
  BTensor plain;
  BNf4 nf4;
  bool is_nf4() const { return nf4.id != 0; }
};

struct BackendLlama {
  LlamaConfig config;
  RopeLayout rope_layout = RopeLayout::Interleaved;
  // The dtype of activations and LoRA tensors: the host model's embedding dtype (f32; f64 for gradient checks),
  // whatever the table is stored as on the backend.
  DType activations = DType::F32;
  BTensor tok_embeddings, norm, output;  // tok_embeddings / output: f32, or f16 (upload_llama's table_dtype)
  struct Layer {
    BTensor attn_norm, ffn_norm;
    BackendLinear wq, wk, wv, wo, w_gate, w_up, w_down;
  };
  std::vector<Layer> layers;
};

// Uploads the model's weights (Lifetime::Weights) once; forwards then reuse them. `table_dtype`: how the
// embedding table and the output head (tied or not) are stored on the backend — nullopt as on the host, or F16:
// both are frozen and only read (a lookup, and the head's matmul with f32 accumulation into f32 logits), so f16
// halves the largest weight of a big vocabulary (Llama-3.2-1B: 1002 -> 501 MiB) for an input rounding of 2^-11.
BackendLlama upload_llama(Backend& be, const LlamaModel& m, std::optional<DType> table_dtype = std::nullopt);

// y = x · Wᵀ for a plain or NF4 base linear (y [M, out], x [M, in]).
void linear_forward(Backend& be, const BTensor& x, const BackendLinear& w, const BTensor& y);

// Logits f32 [T, vocab] for one causal sequence of token ids at positions 0..T-1.
Tensor llama_forward_logits(Backend& be, const BackendLlama& m, std::span<const std::int32_t> tokens);

}  // namespace pocketlora
