#include "host/ref/nf4_decode.h"

#include <algorithm>
#include <string>

#include "host/core/error.h"
#include "host/ref/x86_simd.h"
#include "shaders/common/nf4_codebook.h"

namespace pocketlora::ref {

void check_nf4_weight(const char* op, const Nf4Quantized& w) {
  const std::int64_t n = shape_numel(w.shape), blocks = (n + kNf4BlockSize - 1) / kNf4BlockSize;
  auto fail = [&](const std::string& field, std::size_t found, std::int64_t want) {
    throw ShapeError(std::string(op) + ": NF4 weight " + shape_str(w.shape) + " has " + std::to_string(found) + " " +
                     field + ", expected " + std::to_string(want));
  };
  if (static_cast<std::int64_t>(w.codes.size()) != (n + 1) / 2) fail("code bytes", w.codes.size(), (n + 1) / 2);
  if (static_cast<std::int64_t>(w.absmax.size()) != blocks) fail("absmax entries", w.absmax.size(), blocks);
  if (w.double_quant) {
    if (static_cast<std::int64_t>(w.dq.absmax_q.size()) != blocks)
      fail("double-quant absmax codes", w.dq.absmax_q.size(), blocks);
    const std::int64_t nested = (blocks + kNf4NestedBlockSize - 1) / kNf4NestedBlockSize;
    if (static_cast<std::int64_t>(w.dq.nested_absmax.size()) != nested)
      fail("nested absmax entries", w.dq.nested_absmax.size(), nested);
    if (w.dq.code_map.size() != 256) fail("code map entries", w.dq.code_map.size(), 256);
  }
}

Nf4BlockScales::Nf4BlockScales(const Nf4Quantized& w) : w_(w), map_(w.dq.code_map.data()) {}

float Nf4BlockScales::operator()(std::int64_t block) const {
  const auto b = static_cast<std::size_t>(block);
  if (!w_.double_quant) return w_.absmax[b];
  // Same two roundings as dequantize_absmax (no fused multiply-add).
  const volatile float scaled = map_[w_.dq.absmax_q[b]] * w_.dq.nested_absmax[b / kNf4NestedBlockSize];
  return scaled + w_.dq.offset;
}

void Nf4BlockScales::fill(std::int64_t first, std::int64_t count, float* out) const {
  const auto f = static_cast<std::size_t>(first), n = static_cast<std::size_t>(count);
  if (!w_.double_quant) {
    std::copy_n(w_.absmax.data() + f, n, out);
    return;
  }
  // Two loops through memory, so the compiler cannot fuse the product and the sum into one fma.
  const std::uint8_t* q = w_.dq.absmax_q.data() + f;
  const float* nested = w_.dq.nested_absmax.data();
  for (std::size_t i = 0; i < n; ++i) out[i] = map_[q[i]] * nested[(f + i) / kNf4NestedBlockSize];
  for (std::size_t i = 0; i < n; ++i) out[i] += w_.dq.offset;
}

namespace {

// Decodes `blocks` whole 64-element blocks (32 code bytes each, first element in the high nibble).
using DecodeBlocks = void (*)(const std::uint8_t* codes, const float* scales, std::int64_t blocks, float* out);
using Dot = float (*)(const float* a, const float* b, std::int64_t n);
using Axpy = void (*)(float s, const float* x, float* y, std::int64_t n);

void decode_blocks_scalar(const std::uint8_t* codes, const float* scales, std::int64_t blocks, float* out) {
  for (std::int64_t b = 0; b < blocks; ++b) {
    float lut[16];
    for (int c = 0; c < 16; ++c) lut[c] = kNf4Codebook[c] * scales[b];
    for (int i = 0; i < 32; ++i) {
      const std::uint8_t byte = codes[b * 32 + i];
      out[b * 64 + 2 * i] = lut[byte >> 4];
      out[b * 64 + 2 * i + 1] = lut[byte & 0xf];
    }
  }
}

float dot_scalar(const float* a, const float* b, std::int64_t n) {
  float acc[8] = {};  // independent partial sums, as the SIMD versions keep
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (float v : acc) s += v;
  return s;
}

void axpy_scalar(float s, const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}

#if defined(__x86_64__)
// 16 code bytes -> 32 nibble indices in element order (hi0, lo0, hi1, lo1, ...), one per byte.
__attribute__((target("avx2"))) inline __m256i nibbles_avx2(const std::uint8_t* p) {
  const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_or_si256(_mm256_srli_epi16(w, 4), _mm256_slli_epi16(_mm256_and_si256(w, _mm256_set1_epi16(0xf)), 8));
}

__attribute__((target("avx2,avx512f"))) void decode_blocks_avx512(const std::uint8_t* codes, const float* scales,
                                                                  std::int64_t blocks, float* out) {
  const __m512 book = _mm512_loadu_ps(kNf4Codebook);
  for (std::int64_t b = 0; b < blocks; ++b) {
    const __m512 lut = _mm512_mul_ps(book, _mm512_set1_ps(scales[b]));
    for (int h = 0; h < 2; ++h) {
      const __m256i nib = nibbles_avx2(codes + b * 32 + h * 16);
      float* o = out + b * 64 + h * 32;
      _mm512_storeu_ps(o, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(nib)), lut));
      _mm512_storeu_ps(o + 16, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(nib, 1)), lut));
    }
  }
}

__attribute__((target("avx2"))) void decode_blocks_avx2(const std::uint8_t* codes, const float* scales,
                                                        std::int64_t blocks, float* out) {
  const __m256 book_lo = _mm256_loadu_ps(kNf4Codebook), book_hi = _mm256_loadu_ps(kNf4Codebook + 8);
  for (std::int64_t b = 0; b < blocks; ++b) {
    const __m256 s = _mm256_set1_ps(scales[b]);
    const __m256 lut_lo = _mm256_mul_ps(book_lo, s), lut_hi = _mm256_mul_ps(book_hi, s);
    for (int h = 0; h < 2; ++h) {
      const __m256i nib = nibbles_avx2(codes + b * 32 + h * 16);
      const __m128i half[2] = {_mm256_castsi256_si128(nib), _mm256_extracti128_si256(nib, 1)};
      for (int q = 0; q < 4; ++q) {
        const __m128i bytes = q % 2 == 0 ? half[q / 2] : _mm_srli_si128(half[q / 2], 8);
        const __m256i idx = _mm256_cvtepu8_epi32(bytes);
        // vpermps uses the low 3 bits; bit 3 (moved to the sign bit) picks the upper half of the LUT.
        const __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lut_lo, idx), _mm256_permutevar8x32_ps(lut_hi, idx),
                                          _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
        _mm256_storeu_ps(out + b * 64 + h * 32 + q * 8, v);
      }
    }
  }
}

__attribute__((target("avx2,avx512f"))) float dot_avx512(const float* a, const float* b, std::int64_t n) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  std::int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm512_add_ps(acc[j], _mm512_mul_ps(_mm512_loadu_ps(a + i + 16 * j), _mm512_loadu_ps(b + i + 16 * j)));
  for (; i + 16 <= n; i += 16)
    acc[0] = _mm512_add_ps(acc[0], _mm512_mul_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

__attribute__((target("avx2"))) float dot_avx2(const float* a, const float* b, std::int64_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  std::int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(_mm256_loadu_ps(a + i + 8 * j), _mm256_loadu_ps(b + i + 8 * j)));
  for (; i + 8 <= n; i += 8)
    acc[0] = _mm256_add_ps(acc[0], _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  float s = 0;
  for (float v : lanes) s += v;
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// The plain loop, compiled for wider vectors (GCC vectorises it: no reduction).
__attribute__((target("avx2,avx512f"))) void axpy_avx512(float s, const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}
__attribute__((target("avx2"))) void axpy_avx2(float s, const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}
#endif

struct Kernels {
  const char* isa;
  Nf4Isa id;
  DecodeBlocks decode;
  Dot dot;
  Axpy axpy;
};

constexpr Kernels kScalar{"scalar", Nf4Isa::scalar, decode_blocks_scalar, dot_scalar, axpy_scalar};

Kernels pick(std::string_view want) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  // The fused GEMV kernels of the avx2 set use fma too (every AVX2 CPU but a few VIA ones has it).
  const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f");
  if (has_avx512 && (want.empty() || want == "avx512"))
    return {"avx512", Nf4Isa::avx512, decode_blocks_avx512, dot_avx512, axpy_avx512};
  if (has_avx2 && (want.empty() || want == "avx2")) return {"avx2", Nf4Isa::avx2, decode_blocks_avx2, dot_avx2, axpy_avx2};
#endif
  if (want.empty() || want == "scalar") return kScalar;
  return {nullptr, Nf4Isa::scalar, nullptr, nullptr, nullptr};
}

Kernels& active() {
  static Kernels k = pick({});
  return k;
}

}  // namespace

bool set_nf4_decode_isa(std::string_view isa) {
  const Kernels k = pick(isa);
  if (!k.isa) return false;
  active() = k;
  return true;
}

const char* nf4_decode_isa() { return active().isa; }
Nf4Isa nf4_isa() { return active().id; }

void nf4_decode(const Nf4Quantized& w, const Nf4BlockScales& scales, std::int64_t begin, std::int64_t count,
                float* out) {
  const Kernels& k = active();
  const std::int64_t n = shape_numel(w.shape), end = begin + count;
  const std::uint8_t* codes = w.codes.data();
  std::int64_t e = begin;
  while (e < end) {
    const std::int64_t block = e / kNf4BlockSize, block_begin = block * kNf4BlockSize;
    if (e == block_begin && e + kNf4BlockSize <= end) {  // a run of whole blocks: SIMD
      constexpr std::int64_t kRun = 64;
      float run_scales[kRun];
      const std::int64_t run = std::min(kRun, (end - e) / kNf4BlockSize);
      for (std::int64_t r = 0; r < run; ++r) run_scales[r] = scales(block + r);
      k.decode(codes + e / 2, run_scales, run, out + (e - begin));
      e += run * kNf4BlockSize;
      continue;
    }
    // Part of a block (ragged row start/end): scalar through the same LUT.
    const float s = scales(block);
    const std::int64_t seg_end = std::min({end, block_begin + kNf4BlockSize, n});
    for (; e < seg_end; ++e) {
      const std::uint8_t byte = codes[e / 2];
      out[e - begin] = kNf4Codebook[e % 2 == 0 ? byte >> 4 : byte & 0xf] * s;
    }
  }
}

float dot_f32(const float* a, const float* b, std::int64_t n) { return active().dot(a, b, n); }
void axpy_f32(float s, const float* x, float* y, std::int64_t n) { active().axpy(s, x, y, n); }

}  // namespace pocketlora::ref
