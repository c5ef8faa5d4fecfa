#include "host/formats/ggml_quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "host/core/error.h"
#include "host/core/half.h"

namespace pocketlora {

namespace {

constexpr int kQK = 32;     // Q8_0 / Q4_0 / Q5_0 block
constexpr int kQK_K = 256;  // k-quant super-block
constexpr float kGroupMaxEps = 1e-15f;

void put16(std::uint8_t* p, std::uint16_t v) { std::memcpy(p, &v, 2); }

// ggml's nearest_int: round to nearest (ties to even) through the float mantissa, for |x| <= 4194303.
int nearest_int(float fval) {
  const float val = fval + 12582912.f;
  std::int32_t i;
  std::memcpy(&i, &val, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// {f16 d; i8 qs[32]}
void q8_0_block(const float* x, std::uint8_t* y) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / ((1 << 7) - 1);
  const float id = d ? 1.0f / d : 0.0f;
  put16(y, float_to_half(d));
  for (int j = 0; j < kQK; ++j) y[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(std::roundf(x[j] * id)));
}

// The value of largest magnitude, with its sign (q4_0 / q5_0 scale by it so that it maps to -8 / -16 exactly).
float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQK; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

// {f16 d; u8 qs[16]}: element j in the low nibble of qs[j], element j + 16 in the high nibble.
void q4_0_block(const float* x, std::uint8_t* y) {
  const float d = signed_absmax(x) / -8;
  const float id = d ? 1.0f / d : 0.0f;
  put16(y, float_to_half(d));
  for (int j = 0; j < kQK / 2; ++j) {
    const auto xi0 = static_cast<std::uint8_t>(std::min(15, static_cast<int>(static_cast<std::int8_t>(x[j] * id + 8.5f))));
    const auto xi1 =
        static_cast<std::uint8_t>(std::min(15, static_cast<int>(static_cast<std::int8_t>(x[kQK / 2 + j] * id + 8.5f))));
    y[2 + j] = static_cast<std::uint8_t>(xi0 | (xi1 << 4));
  }
}

// {f16 d; u32 qh; u8 qs[16]}: 5-bit codes, the fifth bit of element j in bit j of qh.
void q5_0_block(const float* x, std::uint8_t* y) {
  const float d = signed_absmax(x) / -16;
  const float id = d ? 1.0f / d : 0.0f;
  put16(y, float_to_half(d));
  std::uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const auto xi0 = static_cast<std::uint8_t>(std::min(31, static_cast<int>(static_cast<std::int8_t>(x[j] * id + 16.5f))));
    const auto xi1 =
        static_cast<std::uint8_t>(std::min(31, static_cast<int>(static_cast<std::int8_t>(x[kQK / 2 + j] * id + 16.5f))));
    y[6 + j] = static_cast<std::uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
    qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
    qh |= ((xi1 & 0x10u) >> 4) << (j + kQK / 2);
  }
  std::memcpy(y + 2, &qh, 4);
}

// ggml's make_qkx2_quants: codes 0..nmax for x ≈ scale·L - the_min, a weighted least-squares search over
// nstep + 1 candidate scales.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, std::uint8_t* L, float* the_min,
                       std::uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<std::uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * Laux[i] + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// ggml's make_qx_quants with rmse_type 1 and no importance weights: signed codes -nmax..nmax-1 (stored + nmax),
// the scale searched over 19 candidates by weighted (x²) least squares.
float make_qx_quants(int n, int nmax, const float* x, std::int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<std::int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = std::max(-nmax, std::min(nmax - 1, l));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * x[i]);
        L[i] = static_cast<std::int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

void get_scale_min_k4(int j, const std::uint8_t* q, std::uint8_t* d, std::uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

// block_q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: 8 sub-blocks of 32 with 6-bit scale and min.
void q4_k_block(const float* x, std::uint8_t* y) {
  std::uint8_t L[kQK_K], Laux[32];
  float weights[32], mins[kQK_K / 32], scales[kQK_K / 32];
  std::uint8_t* sc12 = y + 4;
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kQK_K / 32; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < kQK_K / 32; ++j) {
    std::uint8_t ls = static_cast<std::uint8_t>(nearest_int(inv_scale * scales[j]));
    std::uint8_t lm = static_cast<std::uint8_t>(nearest_int(inv_min * mins[j]));
    ls = std::min<std::uint8_t>(63, ls);
    lm = std::min<std::uint8_t>(63, lm);
    if (j < 4) {
      sc12[j] = ls;
      sc12[j + 4] = lm;
    } else {
      sc12[j + 4] = static_cast<std::uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      sc12[j - 4] |= static_cast<std::uint8_t>((ls >> 4) << 6);
      sc12[j - 0] |= static_cast<std::uint8_t>((lm >> 4) << 6);
    }
  }
  const std::uint16_t d16 = float_to_half(max_scale / 63.f), dmin16 = float_to_half(max_min / 63.f);
  put16(y, d16);
  put16(y + 2, dmin16);
  for (int j = 0; j < kQK_K / 32; ++j) {
    std::uint8_t sc, m;
    get_scale_min_k4(j, sc12, &sc, &m);
    const float d = half_to_float(d16) * sc;
    if (!d) continue;
    const float dm = half_to_float(dmin16) * m;
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<std::uint8_t>(std::max(0, std::min(15, l)));
    }
  }
  std::uint8_t* q = y + 16;
  for (int j = 0; j < kQK_K; j += 64) {
    for (int l = 0; l < 32; ++l) q[l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    q += 32;
  }
}

// block_q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: 16 sub-blocks of 16 with 8-bit scales, 6-bit codes.
void q6_k_block(const float* x, std::uint8_t* y) {
  std::int8_t L[kQK_K];
  float scales[kQK_K / 16];
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
    scales[ib] = scale;
    const float abs_scale = std::fabs(scale);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scale;
    }
  }
  std::uint8_t* ql = y;
  std::uint8_t* qh = y + 128;
  auto* sc = reinterpret_cast<std::int8_t*>(y + 192);
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(y, 0, 210);
    return;
  }
  const float iscale = -128.f / max_scale;
  const std::uint16_t d16 = float_to_half(1 / iscale);
  put16(y + 208, d16);
  for (int ib = 0; ib < kQK_K / 16; ++ib) sc[ib] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = half_to_float(d16) * sc[j];
    if (!d) continue;
    for (int ii = 0; ii < 16; ++ii) {
      int l = nearest_int(x[16 * j + ii] / d);
      l = std::max(-32, std::min(31, l));
      L[16 * j + ii] = static_cast<std::int8_t>(l + 32);
    }
  }
  for (int j = 0; j < kQK_K; j += 128) {
    for (int l = 0; l < 32; ++l) {
      const std::uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF,
                         q4 = L[j + l + 96] & 0xF;
      ql[l + 0] = static_cast<std::uint8_t>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<std::uint8_t>(q2 | (q4 << 4));
      qh[l] = static_cast<std::uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                        ((L[j + l + 96] >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
}

}  // namespace

std::vector<std::uint8_t> ggml_quantize(GgmlType type, const float* src, std::int64_t n) {
  const auto [blk, bytes] = ggml_block_layout(type);
  if (blk == 0 || n < 0 || n % blk != 0)
    throw InvalidArgument(std::string("ggml_quantize: ") + ggml_type_name(type) + " of " + std::to_string(n) +
                          " elements (expected a multiple of " + std::to_string(blk) + ")");
  const std::int64_t nb = n / blk;
  std::vector<std::uint8_t> out(static_cast<std::size_t>(nb * bytes), 0);
  void (*block)(const float*, std::uint8_t*) = nullptr;
  switch (type) {
    case GgmlType::F32: std::memcpy(out.data(), src, out.size()); return out;
    case GgmlType::F16:
      for (std::int64_t i = 0; i < n; ++i) put16(out.data() + 2 * i, float_to_half(src[i]));
      return out;
    case GgmlType::Q8_0: block = q8_0_block; break;
    case GgmlType::Q4_0: block = q4_0_block; break;
    case GgmlType::Q5_0: block = q5_0_block; break;
    case GgmlType::Q4_K: block = q4_k_block; break;
    case GgmlType::Q6_K: block = q6_k_block; break;
    default:
      throw InvalidArgument(std::string("ggml_quantize: type ") + ggml_type_name(type) +
                            " (expected F32, F16, Q8_0, Q4_0, Q5_0, Q4_K or Q6_K)");
  }
  for (std::int64_t b = 0; b < nb; ++b) block(src + b * blk, out.data() + b * bytes);
  return out;
}

}  // namespace pocketlora
