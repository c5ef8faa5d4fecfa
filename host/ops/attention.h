#pragma once
// GPU causal GQA self-attention, forward and backward (layouts and mask: host/ref/attention.h; algorithms and
// memory: docs/ATTENTION.md). q, k, v, out, dout, dq, dk, dv each f32 or f16 (loads widened, scores, softmax and
// every accumulator f32); lse f32. Two kernel families, picked by AttentionOptions::variant:
//   Simple: scores materialised in an [n_heads, T, T] scratch (forward 3 dispatches, backward 4): most
//           parallel, for short T.
//   Lean:   flash-attention style, nothing of size T*T (forward 1 dispatch, backward 2): for long T.
// Both save / consume the same lse, so a forward of one variant pairs with a backward of the other.
// Scratch is taken from `scratch` (which must outlive every submit of the sequence); `segments` (i32 [T]) may
// be null.
#include <cstdint>

#include "host/core/op/attention.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {

void attention(vk::Sequence& seq, vk::Arena& scratch, const DeviceTensor& q, const DeviceTensor& k,
               const DeviceTensor& v, const DeviceTensor* segments, const DeviceTensor& out, const DeviceTensor& lse,
               const AttentionOptions& opt = {});
void attention_backward(vk::Sequence& seq, vk::Arena& scratch, const DeviceTensor& q, const DeviceTensor& k,
                        const DeviceTensor& v, const DeviceTensor* segments, const DeviceTensor& out,
                        const DeviceTensor& lse, const DeviceTensor& dout, const DeviceTensor& dq,
                        const DeviceTensor& dk, const DeviceTensor& dv, const AttentionOptions& opt = {});

// The variant Auto resolves to on this device, and the scratch bytes each call takes (for memory planning).
AttentionOptions::Variant attention_variant(const vk::Device& dev, const AttentionDims& d, const AttentionOptions& opt);
std::uint64_t attention_scratch_bytes(const vk::Device& dev, const AttentionDims& d, const AttentionOptions& opt,
                                      bool backward);

}  // namespace pocketlora::ops
