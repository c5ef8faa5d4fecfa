#include "host/ref/nf4_gemv_kernels.h"

#include "host/ref/nf4_decode.h"
#include "host/ref/x86_simd.h"
#include "shaders/common/nf4_codebook.h"

namespace pocketlora::ref {

namespace {

// Calls kernel<M> for the runtime M (1..4): the token loops unroll and the accumulators stay in registers.
template <template <int> class K, typename... Args>
void dispatch_m(int M, Args... args) {
  switch (M) {
    case 1: K<1>::run(args...); break;
    case 2: K<2>::run(args...); break;
    case 3: K<3>::run(args...); break;
    default: K<4>::run(args...); break;
  }
}

// Scalar: natural element order (lanes 1); the definition the SIMD sets are tested against.
template <int M>
struct DotScalar {
  static void run(const std::uint8_t* codes, const float* scales, std::int64_t blocks, const float* x,
                  std::int64_t ldx, float* out) {
    for (int m = 0; m < M; ++m) {
      float total = 0;
      for (std::int64_t b = 0; b < blocks; ++b) {
        const float* xb = x + m * ldx + b * 64;
        float even = 0, odd = 0;
        for (int i = 0; i < 32; ++i) {
          const std::uint8_t byte = codes[b * 32 + i];
          even += kNf4Codebook[byte >> 4] * xb[2 * i];
          odd += kNf4Codebook[byte & 0xf] * xb[2 * i + 1];
        }
        total += (even + odd) * scales[b];
      }
      out[m] = total;
    }
  }
};

template <int M>
struct AxpyScalar {
  static void run(const std::uint8_t* codes, const float* scales, std::int64_t blocks, const float* dy,
                  std::int64_t ldy, float* acc, std::int64_t ldacc) {
    for (int m = 0; m < M; ++m)
      for (std::int64_t b = 0; b < blocks; ++b) {
        const float c = dy[m * ldy] * scales[b];
        float* a = acc + m * ldacc + b * 64;
        for (int i = 0; i < 32; ++i) {
          const std::uint8_t byte = codes[b * 32 + i];
          a[2 * i] += c * kNf4Codebook[byte >> 4];
          a[2 * i + 1] += c * kNf4Codebook[byte & 0xf];
        }
      }
  }
};

#if defined(__x86_64__)
// AVX-512: 32 code bytes widen, two per 32-bit lane, to 16 lanes (lane j: elements 4j..4j+3, one nibble each);
// vpermps reads only an index's low 4 bits, so a shift of the lane selects each nibble.
#define PL_AVX512 __attribute__((target("avx2,fma,avx512f")))

struct Avx512Block {
  __m512 w[4];  // w[e] lane j = element 4j + e
  PL_AVX512 Avx512Block(const std::uint8_t* c, __m512 book) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c)));
    w[0] = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), book);   // byte 2j, high nibble
    w[1] = _mm512_permutexvar_ps(v, book);                         // byte 2j, low nibble
    w[2] = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 12), book);  // byte 2j+1, high nibble
    w[3] = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 8), book);   // byte 2j+1, low nibble
  }
};

template <int M>
struct DotAvx512 {
  PL_AVX512 static void run(const std::uint8_t* codes, const float* scales, std::int64_t blocks, const float* x,
                            std::int64_t ldx, float* out) {
    const __m512 book = _mm512_loadu_ps(kNf4Codebook);
    __m512 total[M];
    for (int m = 0; m < M; ++m) total[m] = _mm512_setzero_ps();
    for (std::int64_t b = 0; b < blocks; ++b) {
      const Avx512Block blk(codes + b * 32, book);
      const __m512 s = _mm512_set1_ps(scales[b]);
      for (int m = 0; m < M; ++m) {
        const float* xb = x + m * ldx + b * 64;
        // Two independent chains per block; the block's sum is scaled once.
        __m512 e = _mm512_mul_ps(blk.w[0], _mm512_loadu_ps(xb));
        __m512 o = _mm512_mul_ps(blk.w[1], _mm512_loadu_ps(xb + 16));
        e = _mm512_fmadd_ps(blk.w[2], _mm512_loadu_ps(xb + 32), e);
        o = _mm512_fmadd_ps(blk.w[3], _mm512_loadu_ps(xb + 48), o);
        total[m] = _mm512_fmadd_ps(_mm512_add_ps(e, o), s, total[m]);
      }
    }
    for (int m = 0; m < M; ++m) out[m] = _mm512_reduce_add_ps(total[m]);
  }
};

template <int M>
struct AxpyAvx512 {
  PL_AVX512 static void run(const std::uint8_t* codes, const float* scales, std::int64_t blocks, const float* dy,
                            std::int64_t ldy, float* acc, std::int64_t ldacc) {
    const __m512 book = _mm512_loadu_ps(kNf4Codebook);
    float coef[M];
    for (int m = 0; m < M; ++m) coef[m] = dy[m * ldy];
    for (std::int64_t b = 0; b < blocks; ++b) {
      const Avx512Block blk(codes + b * 32, book);
      for (int m = 0; m < M; ++m) {
        const __m512 c = _mm512_set1_ps(coef[m] * scales[b]);
        float* a = acc + m * ldacc + b * 64;
        for (int j = 0; j < 4; ++j) _mm512_storeu_ps(a + 16 * j, _mm512_fmadd_ps(blk.w[j], c, _mm512_loadu_ps(a + 16 * j)));
      }
    }
  }
};

// AVX2: 8 code bytes widen to 8 lanes (lane j: elements 2j, 2j+1); vpermps reads 3 index bits, so each nibble looks
// up both halves of the codebook and its bit 3, shifted into the sign bit, picks one (blendv).
#define PL_AVX2 __attribute__((target("avx2,fma")))

struct Avx2Block {
  __m256 w[8];  // w[2g + e] lane j = element 16g + 2j + e
  PL_AVX2 static __m256 lookup(__m256i idx, __m256i select, __m256 lo, __m256 hi) {
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx),
                            _mm256_castsi256_ps(select));
  }
  PL_AVX2 Avx2Block(const std::uint8_t* c, __m256 lo, __m256 hi) {
    for (int g = 0; g < 4; ++g) {
      const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + 8 * g)));
      w[2 * g] = lookup(_mm256_srli_epi32(v, 4), _mm256_slli_epi32(v, 24), lo, hi);  // high nibble, bit 7
      w[2 * g + 1] = lookup(v, _mm256_slli_epi32(v, 28), lo, hi);                     // low nibble, bit 3
    }
  }
};

template <int M>
struct DotAvx2 {
  PL_AVX2 static void run(const std::uint8_t* codes, const float* scales, std::int64_t blocks, const float* x,
                          std::int64_t ldx, float* out) {
    const __m256 lo = _mm256_loadu_ps(kNf4Codebook), hi = _mm256_loadu_ps(kNf4Codebook + 8);
    __m256 total[M];
    for (int m = 0; m < M; ++m) total[m] = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < blocks; ++b) {
      const Avx2Block blk(codes + b * 32, lo, hi);
      const __m256 s = _mm256_set1_ps(scales[b]);
      for (int m = 0; m < M; ++m) {
        const float* xb = x + m * ldx + b * 64;
        __m256 e = _mm256_mul_ps(blk.w[0], _mm256_loadu_ps(xb));
        __m256 o = _mm256_mul_ps(blk.w[1], _mm256_loadu_ps(xb + 8));
        for (int j = 2; j < 8; j += 2) {
          e = _mm256_fmadd_ps(blk.w[j], _mm256_loadu_ps(xb + 8 * j), e);
          o = _mm256_fmadd_ps(blk.w[j + 1], _mm256_loadu_ps(xb + 8 * j + 8), o);
        }
        total[m] = _mm256_fmadd_ps(_mm256_add_ps(e, o), s, total[m]);
      }
    }
    for (int m = 0; m < M; ++m) {
      const __m128 h = _mm_add_ps(_mm256_castps256_ps128(total[m]), _mm256_extractf128_ps(total[m], 1));
      const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
      out[m] = _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
    }
  }
};

template <int M>
struct AxpyAvx2 {
  PL_AVX2 static void run(const std::uint8_t* codes, const float* scales, std::int64_t blocks, const float* dy,
                          std::int64_t ldy, float* acc, std::int64_t ldacc) {
    const __m256 lo = _mm256_loadu_ps(kNf4Codebook), hi = _mm256_loadu_ps(kNf4Codebook + 8);
    float coef[M];
    for (int m = 0; m < M; ++m) coef[m] = dy[m * ldy];
    for (std::int64_t b = 0; b < blocks; ++b) {
      const Avx2Block blk(codes + b * 32, lo, hi);
      for (int m = 0; m < M; ++m) {
        const __m256 c = _mm256_set1_ps(coef[m] * scales[b]);
        float* a = acc + m * ldacc + b * 64;
        for (int j = 0; j < 8; ++j) _mm256_storeu_ps(a + 8 * j, _mm256_fmadd_ps(blk.w[j], c, _mm256_loadu_ps(a + 8 * j)));
      }
    }
  }
};
#endif

template <template <int> class K>
void dot_for(const std::uint8_t* codes, const float* scales, std::int64_t blocks, const float* x, std::int64_t ldx,
             int M, float* out) {
  dispatch_m<K>(M, codes, scales, blocks, x, ldx, out);
}

template <template <int> class K>
void axpy_for(const std::uint8_t* codes, const float* scales, std::int64_t blocks, const float* dy, std::int64_t ldy,
              int M, float* acc, std::int64_t ldacc) {
  dispatch_m<K>(M, codes, scales, blocks, dy, ldy, acc, ldacc);
}

constexpr Nf4GemvKernels kScalarGemv{{1, 2}, dot_for<DotScalar>, axpy_for<AxpyScalar>};
#if defined(__x86_64__)
constexpr Nf4GemvKernels kAvx2{{8, 2}, dot_for<DotAvx2>, axpy_for<AxpyAvx2>};
constexpr Nf4GemvKernels kAvx512{{16, 4}, dot_for<DotAvx512>, axpy_for<AxpyAvx512>};
#endif

}  // namespace

const Nf4GemvKernels& nf4_gemv_kernels() {
  switch (nf4_isa()) {
#if defined(__x86_64__)
    case Nf4Isa::avx512: return kAvx512;
    case Nf4Isa::avx2: return kAvx2;
#endif
    default: return kScalarGemv;
  }
}

void nf4_gemv_to_kernel_order(const float* in, float* out, std::int64_t n, Nf4KernelOrder order) {
  const std::int64_t L = order.lanes, q = order.per_lane;
  for (std::int64_t g = 0; g < n; g += L * q)
    for (std::int64_t j = 0; j < L; ++j)
      for (std::int64_t e = 0; e < q; ++e) out[g + e * L + j] = in[g + q * j + e];
}

void nf4_gemv_from_kernel_order(const float* in, float* out, std::int64_t n, Nf4KernelOrder order) {
  const std::int64_t L = order.lanes, q = order.per_lane;
  for (std::int64_t g = 0; g < n; g += L * q)
    for (std::int64_t j = 0; j < L; ++j)
      for (std::int64_t e = 0; e < q; ++e) out[g + q * j + e] = in[g + e * L + j];
}

}  // namespace pocketlora::ref
