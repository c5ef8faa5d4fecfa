// NF4 weight access shared by the nf4 kernels. Bindings 1..4 hold the quantized weight; the includer declares
// X / Y at bindings 0 and 5 and the push block `p` (Nf4MatmulPush).
#include "shaders/common/nf4_codebook.h"
#include "shaders/common/nf4_push.h"

// Codes and 8-bit absmax codes are read as 32-bit words so only 32-bit storage is needed (no 8-bit storage
// feature, which some phone drivers lack).
layout(set = 0, binding = 1) readonly buffer WCodes { uint wcodes[]; };
layout(set = 0, binding = 2) readonly buffer WAbsmax { uint wabsmax[]; };  // u8 codes, or f32 bits
layout(set = 0, binding = 3) readonly buffer WNested { float wnested[]; };
layout(set = 0, binding = 4) readonly buffer WCodeMap { float wcodemap[]; };

float nf4_absmax(uint block) {
  if (p.double_quant == 0u) return uintBitsToFloat(wabsmax[block]);
  const uint q = (wabsmax[block >> 2] >> ((block & 3u) * 8u)) & 0xffu;
  // bitsandbytes rounds the product and the offset add separately (two fp32 ops): no fma contraction.
  precise float scaled = wcodemap[q] * wnested[block / p.nested_block];
  precise float absmax = scaled + p.offset;
  return absmax;
}

// Code of flattened element e: byte e/2, high nibble for even e; bytes are little-endian within a word.
uint nf4_code(uint e) {
  const uint shift = ((e >> 1) & 3u) * 8u + ((e & 1u) == 0u ? 4u : 0u);
  return (wcodes[e >> 3] >> shift) & 0xfu;
}

// Codebook lookup. GPUs index a small constant array cheaply; on SIMD CPU drivers (lavapipe) a dynamically
// indexed array becomes a per-lane gather, so the profile can pick a branch-free select tree over the 4 code
// bits instead (15 selects, no memory access). Both give the identical fp32 value.
layout(constant_id = 10) const bool NF4_SELECT_DECODE = false;
float nf4_value(uint c) {
  if (!NF4_SELECT_DECODE) return NF4_CODEBOOK[c];
  const bool b0 = (c & 1u) != 0u, b1 = (c & 2u) != 0u, b2 = (c & 4u) != 0u, b3 = (c & 8u) != 0u;
  const float a0 = b0 ? NF4_CODEBOOK[1] : NF4_CODEBOOK[0], a1 = b0 ? NF4_CODEBOOK[3] : NF4_CODEBOOK[2];
  const float a2 = b0 ? NF4_CODEBOOK[5] : NF4_CODEBOOK[4], a3 = b0 ? NF4_CODEBOOK[7] : NF4_CODEBOOK[6];
  const float a4 = b0 ? NF4_CODEBOOK[9] : NF4_CODEBOOK[8], a5 = b0 ? NF4_CODEBOOK[11] : NF4_CODEBOOK[10];
  const float a6 = b0 ? NF4_CODEBOOK[13] : NF4_CODEBOOK[12], a7 = b0 ? NF4_CODEBOOK[15] : NF4_CODEBOOK[14];
  const float c0 = b1 ? a1 : a0, c1 = b1 ? a3 : a2, c2 = b1 ? a5 : a4, c3 = b1 ? a7 : a6;
  const float d0 = b2 ? c1 : c0, d1 = b2 ? c3 : c2;
  return b3 ? d1 : d0;
}

float nf4_weight(uint e) { return nf4_value(nf4_code(e)) * nf4_absmax(e >> 6); }

// Eight consecutive weights starting at a multiple of 8 (one code word). Byte j holds elements 2j (high
// nibble) and 2j+1 (low nibble); all eight share one absmax block because 64 is a multiple of 8.
void nf4_weights8(uint e8, out float w[8]) {
  const uint word = wcodes[e8 >> 3];
  const float s = nf4_absmax(e8 >> 6);
  for (uint j = 0u; j < 4u; ++j) {
    const uint byte_ = (word >> (8u * j)) & 0xffu;
    w[2u * j] = nf4_value(byte_ >> 4) * s;
    w[2u * j + 1u] = nf4_value(byte_ & 0xfu) * s;
  }
}
