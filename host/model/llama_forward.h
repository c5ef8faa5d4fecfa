#pragma once
// The Llama forward pass, written once over the Backend interface (host/backend/backend.h): the same code runs
// on the CPU backend and the Vulkan backend. The trainer's block forward/backward grows from this file.
#include <cstdint>
#include <functional>
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

// y = x · Wᵀ (y += x · Wᵀ when `accumulate`) for a plain or NF4 base linear (y [M, out], x [M, in]).
void linear_forward(Backend& be, const BTensor& x, const BackendLinear& w, const BTensor& y, bool accumulate = false);

// The seven base linears of a layer, in the order the LoRA targets are numbered (host/train/lora_config.h).
enum class LlamaLinear { Q, K, V, O, Gate, Up, Down };

// One LoRA adapter applied inside a base linear (Backend::matmul_lora): y (+)= x Wᵀ + scale · (x Aᵀ) Bᵀ, with
// `t` f32 [T, r] scratch for x Aᵀ.
struct LinearLora {
  BTensor a, b, t;
  float scale = 1.0f;
};

// y (+)= x · Wᵀ + lora.scale · (x Aᵀ) Bᵀ: one backend op for a plain linear (fused where the backend can), the NF4
// linear then the adapter's product for an NF4 one.
void linear_lora_forward(Backend& be, const BTensor& x, const BackendLinear& w, const LinearLora& lora,
                         const BTensor& y, bool accumulate = false);

// What a caller adds to the one forward. `fused_lora(layer, linear)` names an adapter to apply within the base
// linear itself (nullptr: none): inference's first adapter, which then costs no pass of its own where the backend
// fuses it. `after_linear(layer, linear, x, y)` runs after each base linear y = x Wᵀ (LoRA adapters add their
// products into y there; for o and down y is the residual stream, which the base linear accumulated into). `attention(layer, q, k, v, out)` replaces the causal attention
// over the sequence itself ([T, heads, head_dim] views after RoPE; the KV cache of generation). Unset: nothing
// added, plain causal attention.
struct LlamaForwardHooks {
  std::function<const LinearLora*(std::size_t layer, LlamaLinear linear)> fused_lora;
  std::function<void(std::size_t layer, LlamaLinear linear, const BTensor& x, const BTensor& y)> after_linear;
  std::function<void(std::size_t layer, const BTensor& q, const BTensor& k, const BTensor& v, const BTensor& out)>
      attention;
};

// Records, into the program the caller has begun, the forward of the token ids `ids` (i32 [T]) at `positions`
// (i32 [T], rows of `rope` = rope_table(...)): the final RMSNorm of rows [T - logits.dim(0), T) goes through the
// head into `logits` f32 [rows, vocab] (generation needs only the last row). Activations are Step tensors.
void record_llama_forward(Backend& be, const BackendLlama& m, const BTensor& ids, const BTensor& positions,
                          const BTensor& rope, const BTensor& logits, const LlamaForwardHooks& hooks = {});

// Logits f32 [T, vocab] for one causal sequence of token ids at positions 0..T-1.
Tensor llama_forward_logits(Backend& be, const BackendLlama& m, std::span<const std::int32_t> tokens);

}  // namespace pocketlora
