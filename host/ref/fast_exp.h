#pragma once
// exp in f32 arithmetic that GCC vectorises (SSE2 baseline: no libm call, no branch, no rounding instruction), for
// the CPU backend's f32 training kernels where libm's scalar double exp was the largest cost (attention softmax:
// ~5 M per stories260K step). Cephes' expf: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two constants so r is
// exact), a degree-7 polynomial for e^r (relative error <= 2e-7 over the range), 2^n built in the exponent bits.
// Inputs are clamped to [-87, 88]: below, the result is ~1.6e-38 instead of 0 (callers that need an exact 0, such
// as masked scores, set it themselves); above, exp would overflow f32 anyway. Pure arithmetic: the same bits on
// every run and thread.
#include <bit>
#include <cstdint>

namespace pocketlora::ref {

// Clamped to [-87, 88]. Two selects, in a loop of their own in exp_f32_inplace: GCC if-converts them there, but
// not inside the polynomial's loop (that loop stayed scalar).
inline float clamp_exp_arg(float x) {
  x = x < -87.0f ? -87.0f : x;
  return x > 88.0f ? 88.0f : x;
}

// exp of x in [-87, 88].
inline float exp_f32_in_range(float x) {
  // Round x * log2(e) to the nearest integer n by adding 1.5 * 2^23: n then sits in the low mantissa bits of t,
  // read as an integer without a float -> int conversion (which GCC will not if-convert either).
  const float t = x * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  const std::uint32_t ni = std::bit_cast<std::uint32_t>(t) - 0x4B400000u;  // unsigned: a NaN input wraps, no UB
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * std::bit_cast<float>((ni + 127u) << 23);
}

inline float exp_f32(float x) { return exp_f32_in_range(clamp_exp_arg(x)); }

// x[i] = exp_f32(x[i]) for i in [0, n): loops GCC turns into SIMD, run in their AVX2 build where the CPU has it
// (host/ref/cpu_simd.h; the same bits as the baseline build and as exp_f32 element by element).
void exp_f32_inplace(float* x, std::int64_t n);

}  // namespace pocketlora::ref
