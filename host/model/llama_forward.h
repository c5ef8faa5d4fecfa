#pragma once
// The Llama forward pass, written once over the Backend interface (host/backend/backend.h): the same code runs
// on the CPU backend and the Vulkan backend. The trainer's block forward/backward grows from this file.
#include <cstdint>
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
  BTensor tok_embeddings, norm, output;
  struct Layer {
    BTensor attn_norm, ffn_norm;
    BackendLinear wq, wk, wv, wo, w_gate, w_up, w_down;
  };
  std::vector<Layer> layers;
};

// Uploads the model's weights (Lifetime::Weights) once; forwards then reuse them.
BackendLlama upload_llama(Backend& be, const LlamaModel& m);

// y = x · Wᵀ for a plain or NF4 base linear (y [M, out], x [M, in]).
void linear_forward(Backend& be, const BTensor& x, const BackendLinear& w, const BTensor& y);

// Logits f32 [T, vocab] for one causal sequence of token ids at positions 0..T-1.
Tensor llama_forward_logits(Backend& be, const BackendLlama& m, std::span<const std::int32_t> tokens);

}  // namespace pocketlora
