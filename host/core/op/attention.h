#pragma once
// Causal self-attention with grouped-query heads, forward and backward, Eigen reference.
//   q [T, n_heads, head_dim], k/v [T, n_kv_heads, head_dim] (row-major: the projections' natural output),
//   out [T, n_heads, head_dim], lse [T, n_heads] (log-sum-exp of each softmax row, saved for the backward).
// Query head h reads kv head h / (n_heads / n_kv_heads). Scores are scale * q.k with scale 1/sqrt(head_dim)
// unless set. Key j is visible to query i iff j <= i and, with a segment-id buffer (i32 [T], one document id
// per token of a packed window), segment[j] == segment[i]: a block-diagonal causal mask. A query always sees
// itself, so every softmax row is non-empty and every lse is finite.
// The reference computes in f64 whatever the dtype (f32 or f64 tensors), so it is the accuracy yardstick for
// the GPU kernels and, with f64 tensors, the subject of finite-difference gradient checks.
#include <cstdint>
#include <vector>

#include "host/core/tensor.h"

namespace pocketlora {

struct AttentionOptions {
  float scale = 0.0f;  // 0: 1/sqrt(head_dim)
  // GPU only: which kernel family. Auto picks Simple for T <= profile "attention.simple_max_t" when the
  // [n_heads, T, T] score scratch fits one binding, else Lean.
  enum class Variant { Auto, Simple, Lean } variant = Variant::Auto;
  // GPU lean kernels: queries (forward, dQ) or keys (dK/dV) per invocation; 0: profile "attention.lean_rows".
  std::uint32_t lean_rows = 0;
};

struct AttentionDims {
  std::int64_t T = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  std::int64_t group() const { return n_heads / n_kv_heads; }
};

// Checks q/k/v/out/lse (and segments when given) and returns the dims; throws ShapeError naming the op and every
// shape on mismatch. Shared by the reference and the GPU op. Dtypes are checked by each caller.
AttentionDims check_attention_shapes(const char* op, const Shape& q, const Shape& k, const Shape& v,
                                     const Shape* segments, const Shape& out, const Shape& lse);
float attention_scale(const AttentionDims& d, const AttentionOptions& opt);
// Segment ids (i32 [sum of lengths]) for documents packed back to back: document n's tokens get id n.
Tensor attention_segments(const std::vector<std::int64_t>& doc_lengths);

}  // namespace pocketlora
