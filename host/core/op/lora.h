#pragma once
// LoRA with PEFT semantics on one adapted linear (DESIGN.md §3):
//   forward   Y += s * (drop(X) * A^T) * B^T          A [r, K], B [N, r], X [M, K], Y [M, N]
//   backward  dB (+)= s * dY^T * T,  dA (+)= s * (dY * B)^T * drop(X),  dX (+)= drop'(s * (dY * B) * A)
// with T = drop(X) * A^T [M, r] saved by the forward, s = alpha / r (or alpha / sqrt(r) for rsLoRA), and drop
// the input dropout whose mask comes from Philox4x32-10 keyed by (seed, stream) — identical on CPU and GPU and
// regenerated in the backward rather than stored.
#include <array>
#include <cstdint>

#include "host/core/tensor.h"

namespace pocketlora {

struct LoraOptions {
  float scale = 1.0f;          // alpha / r, or alpha / sqrt(r) with rsLoRA (see lora_scale)
  float dropout = 0.0f;        // p in [0, 1)
  std::uint64_t seed = 0;      // dropout key
  std::uint32_t stream = 0;    // which tensor / layer / step: distinct masks per use
  bool accumulate_grads = false;  // dA, dB, dX are added to (gradient accumulation) instead of overwritten
};

float lora_scale(float alpha, std::int64_t rank, bool rslora);
// Checks X [M,K], A [r,K], B [N,r], Y [M,N] (Y may be null) and returns {M, K, N, r}; names the op and shapes.
std::array<std::int64_t, 4> check_lora_shapes(const char* op, const Shape& x, const Shape& a, const Shape& b,
                                              const Shape* y);
// dropout(x) with the Philox mask, as the GPU computes it.
Tensor lora_dropout_ref(const Tensor& x, const LoraOptions& opt);

}  // namespace pocketlora
