#pragma once
// GPU LoRA forward / backward (semantics and formulas: host/ref/lora.h), composed from the project's GEMM with
// transposed operands plus a Philox dropout kernel. Not fused further on purpose: with r <= 128 the
// intermediate T / G are [M, r] — a few percent of the X / Y traffic — so a fused kernel would save little
// while the GEMM's tiling (from the device profile) is reused as is. The exception is a forward of a few rows
// without dropout (M <= 4, M * r <= 256, f32: generation's decode step), where the cost is the dispatch count:
// one fused dispatch (lora/forward_rows.comp) instead of two.
// Scratch (`step` arena, valid until the sequence's last submit): drop(X) [M,K] when dropout > 0 (X's dtype), G
// [M,r] and s*G*A [M,K] for the dropout backward (f32).
// Mixed precision: X, Y, T, dY, dX each f32 or f16 (the activations and the LoRA compute inputs); A, B, dA, dB
// f32 (master weights and their gradients); every product accumulates in f32 (ops::matmul's mixed variants).
#include "host/core/op/lora.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {

// Y += s * drop(X) * A^T * B^T; writes T = drop(X) * A^T [M, r] (keep it for the backward). `key` is the dropout
// key, i32 [kLoraKeyWords], read by the dropout kernel when the sequence runs (unused, and may be empty, when
// opt.dropout is 0).
// The scratch lora_forward / lora_backward take from their arena for X [M, K] of dtype `x` at rank r (G; with
// dropout drop(X) and dX before dropout), as that arena hands it out.
std::uint64_t lora_scratch_bytes(const vk::Device& dev, std::int64_t M, std::int64_t K, std::int64_t r, DType x,
                                 const LoraOptions& opt, bool backward);
void lora_forward(vk::Sequence& seq, vk::Arena& step, const DeviceTensor& x, const DeviceTensor& a,
                  const DeviceTensor& b, const DeviceTensor& y, const DeviceTensor& t, const DeviceTensor& key,
                  const LoraOptions& opt);
void lora_backward(vk::Sequence& seq, vk::Arena& step, const DeviceTensor& x, const DeviceTensor& a,
                   const DeviceTensor& b, const DeviceTensor& t, const DeviceTensor& dy, const DeviceTensor& dx,
                   const DeviceTensor& da, const DeviceTensor& db, const DeviceTensor& key, const LoraOptions& opt);
// out (+)= drop(in), as the LoRA path applies it (exposed for tests and for fused users). in and out f32 or f16
// each, the product in f32.
void lora_dropout(vk::Sequence& seq, const DeviceTensor& in, const DeviceTensor& out, const DeviceTensor& key,
                  const LoraOptions& opt, bool accumulate);

}  // namespace pocketlora::ops
