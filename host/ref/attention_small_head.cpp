#include "host/ref/attention_small_head.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "host/ref/cpu_simd.h"
#include "host/ref/fast_exp.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

namespace {

// Eight keys at a time in GCC's generic vectors: one AVX2 register in the AVX2 build of the kernels, two SSE
// registers in the baseline one. The rows of the transposed keys/values are zero-padded to Tp (a multiple of 8),
// and every sum keeps 8 lanes added in a fixed order at the end, so both builds give the same bits.
typedef float V8 __attribute__((vector_size(32)));
constexpr std::int64_t kLanes = 8;
// Query rows per work item of the forward: enough to amortise a claim, small enough to balance the causal
// triangle (late rows see more keys) across threads.
constexpr std::int64_t kRowBlock = 32;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::int64_t round_up(std::int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

void load(V8& v, const float* p) { std::memcpy(&v, p, sizeof v); }
void store(float* p, const V8& v) { std::memcpy(p, &v, sizeof v); }

struct Operands {
  const float *q = nullptr, *kt = nullptr, *vt = nullptr;  // kt/vt: [Hkv][D][Tp], zero beyond T
  const float *out = nullptr, *dout = nullptr, *lse_in = nullptr;  // the backward's inputs
  const std::int32_t* seg = nullptr;
  float *o = nullptr, *lse = nullptr, *dq = nullptr;
  std::int64_t T = 0, Tp = 0, H = 0, group = 1;
  float scale = 1.0f;
};

// dst[g][c][j] = src[j][g][c], rows padded with zeros to Tp.
std::vector<float> transpose_heads(const float* src, const AttentionDims& d, std::int64_t Tp) {
  const std::int64_t Hkv = d.n_kv_heads, D = d.head_dim;
  std::vector<float> dst(static_cast<std::size_t>(Hkv * D * Tp), 0.0f);
  for (std::int64_t j = 0; j < d.T; ++j)
    for (std::int64_t g = 0; g < Hkv; ++g)
      for (std::int64_t c = 0; c < D; ++c)
        dst[static_cast<std::size_t>((g * D + c) * Tp + j)] = src[(j * Hkv + g) * D + c];
  return dst;
}

// s[j] = sum_c x[c] * mt[c][j] for j in [0, n8), summed over c in order.
template <int D>
[[gnu::always_inline]] inline void row_times_transposed(const float* x, const float* mt, std::int64_t Tp,
                                                        std::int64_t n8, float* s) {
  V8 xb[D];
  for (int c = 0; c < D; ++c) xb[c] = V8{} + x[c];
  for (std::int64_t j = 0; j < n8; j += kLanes) {
    V8 acc{}, m;
    for (int c = 0; c < D; ++c) {
      load(m, mt + c * Tp + j);
      acc += xb[c] * m;
    }
    store(s + j, acc);
  }
}

// out[c] = ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7)) of v = acc[c], for c in [0, D), D a multiple of 8:
// eight vectors at a time through a transposing add tree (14 shuffles and 7 adds instead of 56 scalar adds).
template <int D> [[gnu::always_inline]] inline void lane_sums(const V8* acc, float* out) {
  static_assert(D % 8 == 0);
  for (int c0 = 0; c0 < D; c0 += 8) {
    const V8* a = acc + c0;
    V8 t[4], u[2];
    for (int k = 0; k < 4; ++k)  // [a0+a1, a2+a3, b0+b1, b2+b3, a4+a5, a6+a7, b4+b5, b6+b7] of a = a[2k], b = a[2k+1]
      t[k] = __builtin_shufflevector(a[2 * k], a[2 * k + 1], 0, 2, 8, 10, 4, 6, 12, 14) +
             __builtin_shufflevector(a[2 * k], a[2 * k + 1], 1, 3, 9, 11, 5, 7, 13, 15);
    for (int k = 0; k < 2; ++k)  // [(a0+a1)+(a2+a3), b.., c.., d.., (a4+a5)+(a6+a7), b.., c.., d..]
      u[k] = __builtin_shufflevector(t[2 * k], t[2 * k + 1], 0, 2, 8, 10, 4, 6, 12, 14) +
             __builtin_shufflevector(t[2 * k], t[2 * k + 1], 1, 3, 9, 11, 5, 7, 13, 15);
    const V8 sums = __builtin_shufflevector(u[0], u[1], 0, 1, 2, 3, 8, 9, 10, 11) +
                    __builtin_shufflevector(u[0], u[1], 4, 5, 6, 7, 12, 13, 14, 15);
    store(out + c0, sums);
  }
}

// out[c] = sum_j p[j] * mt[c][j] for j in [0, n8): 8 lanes per c, added in a fixed order.
template <int D>
[[gnu::always_inline]] inline void transposed_times_row(const float* p, const float* mt, std::int64_t Tp,
                                                        std::int64_t n8, float* out) {
  V8 acc[D] = {};
  for (std::int64_t j = 0; j < n8; j += kLanes) {
    V8 pv, m;
    load(pv, p + j);
    for (int c = 0; c < D; ++c) {
      load(m, mt + c * Tp + j);
      acc[c] += pv * m;
    }
  }
  lane_sums<D>(acc, out);
}

// s[j] = fill where key j is not visible from query i (after i, or another segment); j in [0, n8).
[[gnu::always_inline]] inline void mask_row(float* s, std::int64_t i, std::int64_t n8, const std::int32_t* seg,
                                            float fill) {
  if (seg) {
    const std::int32_t si = seg[i];
    for (std::int64_t j = 0; j <= i; ++j) s[j] = seg[j] == si ? s[j] : fill;
  }
  for (std::int64_t j = i + 1; j < n8; ++j) s[j] = fill;
}

[[gnu::always_inline]] inline float row_max(const float* s, std::int64_t n8) {
  V8 m, x;
  load(m, s);
  for (std::int64_t j = kLanes; j < n8; j += kLanes) {
    load(x, s + j);
    m = m < x ? x : m;
  }
  float r = m[0];
  for (int l = 1; l < kLanes; ++l) r = r < m[l] ? m[l] : r;
  return r;
}

// s[j] = exp_f32(s[j] - shift) (host/ref/fast_exp.h), then exactly 0 where masked.
[[gnu::always_inline]] inline void exp_shifted(float* s, std::int64_t i, std::int64_t n8, const std::int32_t* seg,
                                               float shift) {
  for (std::int64_t j = 0; j < n8; ++j) s[j] = clamp_exp_arg(s[j] - shift);
  for (std::int64_t j = 0; j < n8; ++j) s[j] = exp_f32_in_range(s[j]);
  mask_row(s, i, n8, seg, 0.0f);
}

// The softmax denominator in double, as the GEMM path and the f64 reference sum it.
[[gnu::always_inline]] inline double sum_f64(const float* s, std::int64_t n8) {
  double acc[kLanes] = {};
  for (std::int64_t j = 0; j < n8; j += kLanes)
    for (std::int64_t l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(s[j + l]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Rows [i0, i1) of head h: out and lse. s: Tp floats.
template <int D>
[[gnu::always_inline]] inline void forward_rows(const Operands& a, std::int64_t h, std::int64_t i0, std::int64_t i1,
                                                float* s) {
  const std::int64_t Tp = a.Tp, g = h / a.group;
  const float *kt = a.kt + g * D * Tp, *vt = a.vt + g * D * Tp;
  float qs[D];
  for (std::int64_t i = i0; i < i1; ++i) {
    const std::int64_t n8 = round_up(i + 1), row = i * a.H + h;
    for (int c = 0; c < D; ++c) qs[c] = a.scale * a.q[row * D + c];
    row_times_transposed<D>(qs, kt, Tp, n8, s);
    mask_row(s, i, n8, a.seg, kNegInf);
    const float m = row_max(s, n8);
    exp_shifted(s, i, n8, a.seg, m);
    const double sum = sum_f64(s, n8);
    const auto inv = static_cast<float>(1.0 / sum);
    for (std::int64_t j = 0; j < n8; ++j) s[j] *= inv;
    transposed_times_row<D>(s, vt, Tp, n8, a.o + row * D);
    a.lse[row] = static_cast<float>(static_cast<double>(m) + std::log(sum));
  }
}

// dK and dV of kv head g (transposed, into dkt/dvt [D][Tp]) and dQ of its query heads, accumulated in a fixed order
// (query head, then row). p, ds: Tp floats.
template <int D>
[[gnu::always_inline]] inline void backward_group(const Operands& a, std::int64_t g, float* p, float* ds, float* dkt,
                                                  float* dvt) {
  const std::int64_t Tp = a.Tp;
  const float *kt = a.kt + g * D * Tp, *vt = a.vt + g * D * Tp;
  std::fill(dkt, dkt + D * Tp, 0.0f);
  std::fill(dvt, dvt + D * Tp, 0.0f);
  float qs[D], dq[D];
  for (std::int64_t h = g * a.group; h < (g + 1) * a.group; ++h)
    for (std::int64_t i = 0; i < a.T; ++i) {
      const std::int64_t n8 = round_up(i + 1), row = i * a.H + h;
      const float *dor = a.dout + row * D, *orow = a.out + row * D;
      for (int c = 0; c < D; ++c) qs[c] = a.scale * a.q[row * D + c];
      row_times_transposed<D>(qs, kt, Tp, n8, p);  // the forward's scores, bit for bit
      mask_row(p, i, n8, a.seg, kNegInf);
      exp_shifted(p, i, n8, a.seg, a.lse_in[row]);  // probabilities from the saved log-sum-exp
      row_times_transposed<D>(dor, vt, Tp, n8, ds);  // dP = dO V^T
      double di = 0;                                 // rowsum(dO .* O)
      for (int c = 0; c < D; ++c) di += static_cast<double>(dor[c]) * static_cast<double>(orow[c]);
      const auto dif = static_cast<float>(di);
      for (std::int64_t j = 0; j < n8; ++j) ds[j] = p[j] * (ds[j] - dif);  // dS = P .* (dP - D_i)
      transposed_times_row<D>(ds, kt, Tp, n8, dq);
      for (int c = 0; c < D; ++c) a.dq[row * D + c] = a.scale * dq[c];
      V8 qb[D], ob[D];
      for (int c = 0; c < D; ++c) qb[c] = V8{} + qs[c], ob[c] = V8{} + dor[c];
      for (std::int64_t j = 0; j < n8; j += kLanes) {  // dK += scale dS^T Q, dV += P^T dO
        V8 dsv, pv, acc;
        load(dsv, ds + j);
        load(pv, p + j);
        for (int c = 0; c < D; ++c) {
          load(acc, dkt + c * Tp + j);
          store(dkt + c * Tp + j, acc + qb[c] * dsv);
          load(acc, dvt + c * Tp + j);
          store(dvt + c * Tp + j, acc + ob[c] * pv);
        }
      }
    }
}

// The same code built for AVX2 and for the baseline; no FMA contraction in either (-std=c++20 turns it off), so
// both give the same bits.
using ForwardFn = void (*)(const Operands&, std::int64_t, std::int64_t, std::int64_t, float*);
using BackwardFn = void (*)(const Operands&, std::int64_t, float*, float*, float*, float*);

template <int D> [[gnu::flatten]] void forward_baseline(const Operands& a, std::int64_t h, std::int64_t i0,
                                                         std::int64_t i1, float* s) {
  forward_rows<D>(a, h, i0, i1, s);
}
template <int D> [[gnu::flatten]] void backward_baseline(const Operands& a, std::int64_t g, float* p, float* ds,
                                                          float* dkt, float* dvt) {
  backward_group<D>(a, g, p, ds, dkt, dvt);
}
#if defined(__x86_64__)
template <int D>
__attribute__((target("avx2"), flatten)) void forward_avx2(const Operands& a, std::int64_t h, std::int64_t i0,
                                                           std::int64_t i1, float* s) {
  forward_rows<D>(a, h, i0, i1, s);
}
template <int D> __attribute__((target("avx2"), flatten)) void backward_avx2(const Operands& a, std::int64_t g,
                                                                             float* p, float* ds, float* dkt,
                                                                             float* dvt) {
  backward_group<D>(a, g, p, ds, dkt, dvt);
}
#endif

template <int D> ForwardFn forward_for() {
#if defined(__x86_64__)
  if (cpu_simd_avx2()) return &forward_avx2<D>;
#endif
  return &forward_baseline<D>;
}
template <int D> BackwardFn backward_for() {
#if defined(__x86_64__)
  if (cpu_simd_avx2()) return &backward_avx2<D>;
#endif
  return &backward_baseline<D>;
}

ForwardFn forward_kernel(std::int64_t D) {
  switch (D) {
    case 8: return forward_for<8>();
    case 16: return forward_for<16>();
    case 32: return forward_for<32>();
    default: return nullptr;
  }
}
BackwardFn backward_kernel(std::int64_t D) {
  switch (D) {
    case 8: return backward_for<8>();
    case 16: return backward_for<16>();
    case 32: return backward_for<32>();
    default: return nullptr;
  }
}

}  // namespace

bool attention_small_head_supported(std::int64_t head_dim) { return forward_kernel(head_dim) != nullptr; }

void attention_small_head_f32(const float* q, const float* k, const float* v, const std::int32_t* seg, float* out,
                              float* lse, const AttentionDims& d, float scale) {
  const ForwardFn kernel = forward_kernel(d.head_dim);
  const std::int64_t Tp = round_up(d.T), blocks = (d.T + kRowBlock - 1) / kRowBlock;
  const std::vector<float> kt = transpose_heads(k, d, Tp), vt = transpose_heads(v, d, Tp);
  Operands a;
  a.q = q, a.kt = kt.data(), a.vt = vt.data(), a.seg = seg, a.o = out, a.lse = lse;
  a.T = d.T, a.Tp = Tp, a.H = d.n_heads, a.group = d.group(), a.scale = scale;
  parallel_for(d.n_heads * blocks, kRowBlock * d.T * d.head_dim, [&](std::int64_t b0, std::int64_t b1) {
    std::vector<float> s(static_cast<std::size_t>(Tp));
    for (std::int64_t hb = b0; hb < b1; ++hb) {
      const std::int64_t h = hb / blocks, i0 = hb % blocks * kRowBlock;
      kernel(a, h, i0, std::min(d.T, i0 + kRowBlock), s.data());
    }
  });
}

void attention_small_head_backward_f32(const float* q, const float* k, const float* v, const std::int32_t* seg,
                                       const float* out, const float* lse, const float* dout, float* dq, float* dk,
                                       float* dv, const AttentionDims& d, float scale) {
  const BackwardFn kernel = backward_kernel(d.head_dim);
  const std::int64_t Tp = round_up(d.T), D = d.head_dim, Hkv = d.n_kv_heads;
  const std::vector<float> kt = transpose_heads(k, d, Tp), vt = transpose_heads(v, d, Tp);
  Operands a;
  a.q = q, a.kt = kt.data(), a.vt = vt.data(), a.out = out, a.dout = dout, a.lse_in = lse, a.seg = seg, a.dq = dq;
  a.T = d.T, a.Tp = Tp, a.H = d.n_heads, a.group = d.group(), a.scale = scale;
  // A kv head's dK/dV sum over its query heads: one work item per kv head, so the order is fixed.
  parallel_for(Hkv, d.group() * d.T * d.T * D, [&](std::int64_t g0, std::int64_t g1) {
    std::vector<float> p(static_cast<std::size_t>(Tp)), ds(static_cast<std::size_t>(Tp)),
        dkt(static_cast<std::size_t>(D * Tp)), dvt(static_cast<std::size_t>(D * Tp));
    for (std::int64_t g = g0; g < g1; ++g) {
      kernel(a, g, p.data(), ds.data(), dkt.data(), dvt.data());
      for (std::int64_t j = 0; j < d.T; ++j)
        for (std::int64_t c = 0; c < D; ++c) {
          dk[(j * Hkv + g) * D + c] = dkt[static_cast<std::size_t>(c * Tp + j)];
          dv[(j * Hkv + g) * D + c] = dvt[static_cast<std::size_t>(c * Tp + j)];
        }
    }
  });
}

}  // namespace pocketlora::ref
