#pragma once
// The CPU backend's f32 attention for small head dims (stories260K: 8), one query row at a time. At head_dim 8
// the blocked GEMM path of host/ref/attention.cpp spent most of its time in OpenBLAS packing and call overhead
// (GEMMs with an inner or outer dimension of 8) and in a [32 x T] score buffer: here the keys and values of each
// kv head are transposed once per call to [head_dim, T], so every per-row loop runs over the keys, contiguous and
// vectorisable (AVX2 or baseline build, host/ref/cpu_simd.h), with no BLAS call. Same semantics as ref::attention /
// ref::attention_backward (host/core/op/attention.h); the results do not depend on the thread count or the SIMD
// width (fixed summation order, no FMA contraction).
#include <cstdint>

#include "host/core/op/attention.h"

namespace pocketlora::ref {

// Head dims with a kernel here (8, 16, 32: the row loops are unrolled over the head dim); others take the GEMM
// path, whose register blocking wins for large ones.
bool attention_small_head_supported(std::int64_t head_dim);

// q [T, H, D], k/v [T, Hkv, D], out [T, H, D], lse [T, H], contiguous f32; seg (T ids) may be null.
void attention_small_head_f32(const float* q, const float* k, const float* v, const std::int32_t* seg, float* out,
                              float* lse, const AttentionDims& d, float scale);
// dq [T, H, D], dk/dv [T, Hkv, D] (overwritten) from the forward's out and lse.
void attention_small_head_backward_f32(const float* q, const float* k, const float* v, const std::int32_t* seg,
                                       const float* out, const float* lse, const float* dout, float* dq, float* dk,
                                       float* dv, const AttentionDims& d, float scale);

}  // namespace pocketlora::ref
