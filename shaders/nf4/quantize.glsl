// First level of bitsandbytes NF4 quantization on the GPU, so a phone can quantize an f16/f32 checkpoint
// tensor by tensor without a second full copy in CPU memory: one invocation per 64-element block computes
// absmax = max|x| (exact in any order), inv = 1 / absmax, and code = #thresholds below x * inv (the CUDA
// kernel's multiply by the reciprocal, not a division), packing two codes per byte, first element in the high
// nibble. Blocks are 32 bytes = 8 whole words, so invocations never share an output word.
// Double quantization of the (small) absmax array is done on the host by the reference code, bit-exact.
#include "shaders/common/nf4_codebook.h"
#include "shaders/common/nf4_push.h"
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(push_constant) uniform Push { Nf4MatmulPush p; };  // N*K = element count
layout(set = 0, binding = 0) readonly buffer XBuf { X_T x[]; };
layout(set = 0, binding = 1) writeonly buffer Codes { uint codes[]; };
layout(set = 0, binding = 2) writeonly buffer Absmax { float absmax[]; };
// status[0]: 1 when a NaN/Inf was seen; status[1]: smallest offending element index (host initialises to ~0).
layout(set = 0, binding = 3) buffer Status { uint status[]; };

uint nf4_quantize(float v) {
  uint c = 0u;
  for (uint t = 0u; t < 15u; ++t) c += v > NF4_THRESHOLDS[t] ? 1u : 0u;
  return c;
}

void main() {
  const uint block = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  const uint n = p.N * p.K;
  const uint begin = block * 64u;
  if (begin >= n) return;
  const uint count = min(64u, n - begin);
  float amax = 0.0;
  for (uint i = 0u; i < count; ++i) {
    const float v = float(x[begin + i]);
    // Exponent-bits test: immune to drivers that fold isnan()/isinf() away under relaxed float rules.
    if ((floatBitsToUint(v) & 0x7f800000u) == 0x7f800000u) {
      atomicOr(status[0], 1u);
      atomicMin(status[1], begin + i);
    }
    amax = max(amax, abs(v));
  }
  absmax[block] = amax;
  // All-zero block: CUDA computes 0 * (1/0) = NaN, which every threshold comparison rejects -> code 0.
  const float inv = 1.0 / amax;
  for (uint w = 0u; w < 8u; ++w) {
    const uint e0 = begin + w * 8u;
    if (e0 >= n) break;
    uint word = 0u;
    for (uint j = 0u; j < 8u; ++j) {
      const uint e = e0 + j;
      // Odd count: CUDA pads the block with 0.0, so the last low nibble is the code of 0 (7; 0 if all-zero).
      if (e >= n && (j & 1u) == 0u) break;
      const uint c = amax > 0.0 ? nf4_quantize((e < n ? float(x[e]) : 0.0) * inv) : 0u;
      word |= c << ((j >> 1) * 8u + ((j & 1u) == 0u ? 4u : 0u));
    }
    codes[e0 >> 3] = word;
  }
}
