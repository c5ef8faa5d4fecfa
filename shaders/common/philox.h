// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based RNG,
// so any element's random number is a pure function of (key, counter) and CPU and GPU produce the same
// dropout mask without sharing state. Written once for GLSL and C++; tests compare both bit for bit.
#ifndef PL_SHADERS_COMMON_PHILOX_H
#define PL_SHADERS_COMMON_PHILOX_H
#ifdef __cplusplus
#include <array>
#include <cstdint>
namespace pocketlora {
using philox_u32 = std::uint32_t;
using philox_u4 = std::array<std::uint32_t, 4>;
inline void philox_mul(philox_u32 a, philox_u32 b, philox_u32& hi, philox_u32& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<philox_u32>(p >> 32);
  lo = static_cast<philox_u32>(p);
}
#define PL_U4(a, b, c, d) philox_u4{a, b, c, d}
#define PL_INLINE inline
#else
#define philox_u32 uint
#define philox_u4 uvec4
void philox_mul(uint a, uint b, out uint hi, out uint lo) { umulExtended(a, b, hi, lo); }
#define PL_U4(a, b, c, d) uvec4(a, b, c, d)
#define PL_INLINE
#endif

PL_INLINE philox_u4 philox4x32_10(philox_u4 c, philox_u32 k0, philox_u32 k1) {
  for (int i = 0; i < 10; ++i) {
    philox_u32 hi0, lo0, hi1, lo1;
    philox_mul(0xD2511F53u, c[0], hi0, lo0);
    philox_mul(0xCD9E8D57u, c[2], hi1, lo1);
    c = PL_U4(hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0);
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

// Dropout keep decision for element `index` of a tensor identified by `stream` (e.g. layer * 8 + target) under
// the dropout key (k0, k1, c2, c3): (k0, k1) is the Philox key (the seed), (c2, c3) the upper counter words (the
// step and micro-batch), so each step draws a new mask from the same seed and a zero counter reproduces the masks
// of a key without one. Uniform u in [0, 1) from the top 24 bits of one Philox output word; keep when u >= p.
PL_INLINE bool dropout_keep(philox_u4 key, philox_u32 stream, philox_u32 index, float p) {
  const philox_u4 r = philox4x32_10(PL_U4(index >> 2, stream, key[2], key[3]), key[0], key[1]);
  const philox_u32 word = r[index & 3u];
  const float u = float(word >> 8) * (1.0f / 16777216.0f);
  return u >= p;
}

#ifdef __cplusplus
}  // namespace pocketlora
#endif
#undef PL_U4
#undef PL_INLINE
#endif
