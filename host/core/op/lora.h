#pragma once
// LoRA with PEFT semantics on one adapted linear (DESIGN.md §3):
//   forward   Y += s * (drop(X) * A^T) * B^T          A [r, K], B [N, r], X [M, K], Y [M, N]
//   backward  dB (+)= s * dY^T * T,  dA (+)= s * (dY * B)^T * drop(X),  dX (+)= drop'(s * (dY * B) * A)
// with T = drop(X) * A^T [M, r] saved by the forward, s = alpha / r (or alpha / sqrt(r) for rsLoRA), and drop
// the input dropout whose mask comes from Philox4x32-10 keyed by the dropout key and the stream — identical on CPU
// and GPU and regenerated in the backward rather than stored.
//
// The dropout key (seed, step, micro-batch) is data, not a recorded option: backends read it from an i32
// [kLoraKeyWords] tensor (lora_key_tensor) that the host writes before each run, so a step recorded once draws a
// new mask every step, and the forward and backward of one run share it. The stream (which layer and linear) is
// fixed per recorded op.
#include <array>
#include <cstdint>

#include "host/core/tensor.h"

namespace pocketlora {

struct LoraOptions {
  float scale = 1.0f;          // alpha / r, or alpha / sqrt(r) with rsLoRA (see lora_scale)
  float dropout = 0.0f;        // p in [0, 1)
  std::uint32_t stream = 0;    // which tensor / layer: distinct masks per use
  bool accumulate_grads = false;  // dA, dB, dX are added to (gradient accumulation) instead of overwritten
};

// The dropout key: the Philox key (seed) and the two upper Philox counter words (step, micro-batch).
struct LoraDropoutKey {
  std::uint64_t seed = 0;
  std::uint32_t step = 0, micro = 0;
  bool operator==(const LoraDropoutKey&) const = default;
};
// Words of the key tensor: seed low, seed high, step, micro-batch (shaders/common/lora_push.h).
extern const std::int64_t kLoraKeyWords;
Tensor lora_key_tensor(const LoraDropoutKey& key);
// ShapeError naming `op` unless t is i32 [kLoraKeyWords].
LoraDropoutKey lora_key_from_tensor(const char* op, const Tensor& t);

float lora_scale(float alpha, std::int64_t rank, bool rslora);
// Checks X [M,K], A [r,K], B [N,r], Y [M,N] (Y may be null) and returns {M, K, N, r}; names the op and shapes.
std::array<std::int64_t, 4> check_lora_shapes(const char* op, const Shape& x, const Shape& a, const Shape& b,
                                              const Shape* y);
// dropout(x) with the Philox mask, as the GPU computes it.
Tensor lora_dropout_ref(const Tensor& x, const LoraDropoutKey& key, const LoraOptions& opt);

}  // namespace pocketlora
