#include "host/ref/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "host/core/error.h"
#include "host/ref/attention_small_head.h"
#include "host/ref/blas.h"
#include "host/ref/eigen_view.h"
#include "host/ref/fast_exp.h"
#include "host/ref/float_kernel.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

namespace {

using Strided = Eigen::Map<const RowMatrixD, 0, Eigen::OuterStride<>>;
using StridedMut = Eigen::Map<RowMatrixD, 0, Eigen::OuterStride<>>;

// f16 operands (mixed-precision storage) take the f64 path below, widened there and rounded once on store.
void check_float(const char* op, const char* name, const Tensor& t) {
  if (t.dtype() != DType::F32 && t.dtype() != DType::F64 && t.dtype() != DType::F16)
    throw ShapeError(std::string(op) + ": " + name + " " + shape_str(t.shape()) + " is " + dtype_name(t.dtype()) +
                     ", expected f32, f64 or f16");
  if (!t.is_contiguous()) throw ShapeError(std::string(op) + ": " + name + " must be contiguous");
}

const std::int32_t* segment_ids(const char* op, const Tensor* segments) {
  if (!segments) return nullptr;
  if (segments->dtype() != DType::I32)
    throw ShapeError(std::string(op) + ": segments " + shape_str(segments->shape()) + " is " +
                     dtype_name(segments->dtype()) + ", expected i32");
  return segments->data<std::int32_t>();
}

// Head h of a [T, heads, D] f64 tensor as a T x D matrix view.
Strided head(const Tensor& t, std::int64_t h) {
  const auto heads = t.dim(1), D = t.dim(2);
  return Strided(t.data<double>() + h * D, t.dim(0), D, Eigen::OuterStride<>(heads * D));
}
StridedMut head(Tensor& t, std::int64_t h) {
  const auto heads = t.dim(1), D = t.dim(2);
  return StridedMut(t.data<double>() + h * D, t.dim(0), D, Eigen::OuterStride<>(heads * D));
}

bool visible(const std::int32_t* seg, std::int64_t i, std::int64_t j) {
  return j <= i && (!seg || seg[i] == seg[j]);
}

void store(Tensor& dst, const Tensor& src64) {
  Tensor c = src64.to(dst.dtype());
  std::memcpy(dst.raw(), c.raw(), dst.nbytes());
}

// The f32 path (every tensor f32: training): per (head, block of kQueryBlock query rows) f32 GEMMs through
// host/ref/blas.h (scores S = scale Q K^T over the keys the block can see, then P V; the backward's dP = dO V^T,
// dQ = scale dS K, dK += scale dS^T Q, dV += P^T dO), the softmax in between row by row with f64 sums and
// vectorised f32 exponentials (host/ref/fast_exp.h). No f64 copies, scratch O(block x T). Masked scores get
// probability exactly 0.
constexpr std::int64_t kQueryBlock = 32;  // stories260K step CPU time: 16 +25%, 64 +7%, 128 +12%

// P[r, j] = exp(S[r, j] - shift_r) for the visible keys of query i0 + r, else 0; S and P share `s` ([rows, n]).
void probabilities(float* s, std::int64_t rows, std::int64_t n, std::int64_t i0, const std::int32_t* seg,
                   const float* shift) {
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = s + r * n;
    const std::int64_t i = i0 + r;
    for (std::int64_t j = 0; j < n; ++j) row[j] -= shift[r];
    exp_f32_inplace(row, n);
    if (i + 1 < n) std::fill(row + i + 1, row + n, 0.0f);  // the causal mask
    if (seg)
      for (std::int64_t j = 0; j <= i; ++j)
        if (seg[j] != seg[i]) row[j] = 0.0f;
  }
}

void attention_f32(const Tensor& q, const Tensor& k, const Tensor& v, const std::int32_t* seg, Tensor& out,
                   Tensor& lse, const AttentionDims& d, float scale) {
  const std::int64_t T = d.T, H = d.n_heads, Hkv = d.n_kv_heads, D = d.head_dim;
  const std::int64_t blocks = (T + kQueryBlock - 1) / kQueryBlock;
  const float *qp = q.data<float>(), *kp = k.data<float>(), *vp = v.data<float>();
  float *op = out.data<float>(), *lp = lse.data<float>();
  // Blocks of every head are independent.
  parallel_for(H * blocks, kQueryBlock * T * D, [&](std::int64_t b0, std::int64_t b1) {
    std::vector<float> s(static_cast<std::size_t>(kQueryBlock * T)), shift(static_cast<std::size_t>(kQueryBlock));
    for (std::int64_t hb = b0; hb < b1; ++hb) {
      const std::int64_t h = hb / blocks, g = h / d.group(), i0 = hb % blocks * kQueryBlock;
      const std::int64_t rows = std::min(kQueryBlock, T - i0), n = i0 + rows;  // keys 0..n-1 are visible to some row
      gemm(false, true, rows, n, D, scale, qp + (i0 * H + h) * D, H * D, kp + g * D, Hkv * D, 0.0f, s.data(), n);
      for (std::int64_t r = 0; r < rows; ++r) {
        float m = -std::numeric_limits<float>::infinity();
        for (std::int64_t j = 0; j <= i0 + r; ++j)
          if (visible(seg, i0 + r, j)) m = std::max(m, s[r * n + j]);
        shift[r] = m;
      }
      probabilities(s.data(), rows, n, i0, seg, shift.data());
      for (std::int64_t r = 0; r < rows; ++r) {
        float* row = s.data() + r * n;
        double sum = 0;
        for (std::int64_t j = 0; j < n; ++j) sum += row[j];
        const auto inv = static_cast<float>(1.0 / sum);
        for (std::int64_t j = 0; j < n; ++j) row[j] *= inv;
        lp[(i0 + r) * H + h] = static_cast<float>(static_cast<double>(shift[r]) + std::log(sum));
      }
      gemm(false, false, rows, D, n, 1.0f, s.data(), n, vp + g * D, Hkv * D, 0.0f, op + (i0 * H + h) * D, H * D);
    }
  });
}

// dK and dV of a kv head sum over its query heads and blocks, so the pool splits by kv head and each accumulates
// in a fixed order (query head, then block): the same bits whatever the thread count.
void attention_backward_f32(const Tensor& q, const Tensor& k, const Tensor& v, const std::int32_t* seg,
                            const Tensor& out, const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk,
                            Tensor& dv, const AttentionDims& d, float scale) {
  const std::int64_t T = d.T, H = d.n_heads, Hkv = d.n_kv_heads, D = d.head_dim;
  const float *qp = q.data<float>(), *kp = k.data<float>(), *vp = v.data<float>(), *op = out.data<float>(),
              *lp = lse.data<float>(), *dop = dout.data<float>();
  float *dqp = dq.data<float>(), *dkp = dk.data<float>(), *dvp = dv.data<float>();
  parallel_for(Hkv, d.group() * T * T * D, [&](std::int64_t g0, std::int64_t g1) {
    std::vector<float> p(static_cast<std::size_t>(kQueryBlock * T)), dp(static_cast<std::size_t>(kQueryBlock * T)),
        shift(static_cast<std::size_t>(kQueryBlock));
    for (std::int64_t g = g0; g < g1; ++g) {
      for (std::int64_t j = 0; j < T; ++j) {
        std::fill(dkp + (j * Hkv + g) * D, dkp + (j * Hkv + g + 1) * D, 0.0f);
        std::fill(dvp + (j * Hkv + g) * D, dvp + (j * Hkv + g + 1) * D, 0.0f);
      }
      for (std::int64_t h = g * d.group(); h < (g + 1) * d.group(); ++h)
        for (std::int64_t i0 = 0; i0 < T; i0 += kQueryBlock) {
          const std::int64_t rows = std::min(kQueryBlock, T - i0), n = i0 + rows;
          const float *qb = qp + (i0 * H + h) * D, *dob = dop + (i0 * H + h) * D;
          gemm(false, true, rows, n, D, scale, qb, H * D, kp + g * D, Hkv * D, 0.0f, p.data(), n);
          for (std::int64_t r = 0; r < rows; ++r) shift[r] = lp[(i0 + r) * H + h];
          probabilities(p.data(), rows, n, i0, seg, shift.data());
          gemm(false, true, rows, n, D, 1.0f, dob, H * D, vp + g * D, Hkv * D, 0.0f, dp.data(), n);
          for (std::int64_t r = 0; r < rows; ++r) {  // dS = P .* (dP - rowsum(dO .* O)), into dp
            const float *o = op + ((i0 + r) * H + h) * D, *dor = dob + r * H * D;
            double di = 0;
            for (std::int64_t c = 0; c < D; ++c) di += static_cast<double>(dor[c]) * static_cast<double>(o[c]);
            const auto dif = static_cast<float>(di);
            for (std::int64_t j = 0; j < n; ++j) dp[r * n + j] = p[r * n + j] * (dp[r * n + j] - dif);
          }
          gemm(false, false, rows, D, n, scale, dp.data(), n, kp + g * D, Hkv * D, 0.0f, dqp + (i0 * H + h) * D,
               H * D);
          gemm(true, false, n, D, rows, scale, dp.data(), n, qb, H * D, 1.0f, dkp + g * D, Hkv * D);
          gemm(true, false, n, D, rows, 1.0f, p.data(), n, dob, H * D, 1.0f, dvp + g * D, Hkv * D);
        }
    }
  });
}

}  // namespace

void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* segments, Tensor& out, Tensor& lse,
               const AttentionOptions& opt) {
  const char* op = "ref::attention";
  const AttentionDims d = check_attention_shapes(op, q.shape(), k.shape(), v.shape(),
                                                 segments ? &segments->shape() : nullptr, out.shape(), lse.shape());
  for (auto [n, t] : {std::pair<const char*, const Tensor*>{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out},
                      {"lse", &lse}})
    check_float(op, n, *t);
  const std::int32_t* seg = segment_ids(op, segments);
  const double scale = attention_scale(d, opt);
  if (all_contiguous_f32({&q, &k, &v, &out, &lse}) && attention_small_head_supported(d.head_dim))
    return attention_small_head_f32(q.data<float>(), k.data<float>(), v.data<float>(), seg, out.data<float>(),
                                    lse.data<float>(), d, static_cast<float>(scale));
  if (all_contiguous_f32({&q, &k, &v, &out, &lse}))
    return attention_f32(q, k, v, seg, out, lse, d, static_cast<float>(scale));
  const Tensor q64 = q.to(DType::F64), k64 = k.to(DType::F64), v64 = v.to(DType::F64);
  Tensor o64 = Tensor::zeros(out.shape(), DType::F64), l64 = Tensor::zeros(lse.shape(), DType::F64);
  double* lp = l64.data<double>();
  for (std::int64_t h = 0; h < d.n_heads; ++h) {
    const std::int64_t g = h / d.group();
    RowMatrixD S = scale * (head(q64, h) * head(k64, g).transpose());
    for (std::int64_t i = 0; i < d.T; ++i) {
      double m = -std::numeric_limits<double>::infinity();
      for (std::int64_t j = 0; j <= i; ++j)
        if (visible(seg, i, j)) m = std::max(m, S(i, j));
      double sum = 0;
      for (std::int64_t j = 0; j < d.T; ++j) {
        S(i, j) = visible(seg, i, j) ? std::exp(S(i, j) - m) : 0.0;
        sum += S(i, j);
      }
      S.row(i) /= sum;
      lp[i * d.n_heads + h] = m + std::log(sum);
    }
    head(o64, h) = S * head(v64, g);
  }
  store(out, o64);
  store(lse, l64);
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* segments, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv,
                        const AttentionOptions& opt) {
  const char* op = "ref::attention_backward";
  const AttentionDims d = check_attention_shapes(op, q.shape(), k.shape(), v.shape(),
                                                 segments ? &segments->shape() : nullptr, out.shape(), lse.shape());
  if (dout.shape() != q.shape() || dq.shape() != q.shape() || dk.shape() != k.shape() || dv.shape() != v.shape())
    throw ShapeError(std::string(op) + ": dout " + shape_str(dout.shape()) + " / dq " + shape_str(dq.shape()) +
                     " must match q " + shape_str(q.shape()) + ", dk " + shape_str(dk.shape()) + " / dv " +
                     shape_str(dv.shape()) + " must match k/v " + shape_str(k.shape()));
  for (auto [n, t] : {std::pair<const char*, const Tensor*>{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out},
                      {"lse", &lse}, {"dout", &dout}, {"dq", &dq}, {"dk", &dk}, {"dv", &dv}})
    check_float(op, n, *t);
  const std::int32_t* seg = segment_ids(op, segments);
  const double scale = attention_scale(d, opt);
  if (all_contiguous_f32({&q, &k, &v, &out, &lse, &dout, &dq, &dk, &dv}) && attention_small_head_supported(d.head_dim))
    return attention_small_head_backward_f32(q.data<float>(), k.data<float>(), v.data<float>(), seg,
                                             out.data<float>(), lse.data<float>(), dout.data<float>(),
                                             dq.data<float>(), dk.data<float>(), dv.data<float>(), d,
                                             static_cast<float>(scale));
  if (all_contiguous_f32({&q, &k, &v, &out, &lse, &dout, &dq, &dk, &dv}))
    return attention_backward_f32(q, k, v, seg, out, lse, dout, dq, dk, dv, d, static_cast<float>(scale));
  const Tensor q64 = q.to(DType::F64), k64 = k.to(DType::F64), v64 = v.to(DType::F64), o64 = out.to(DType::F64),
               l64 = lse.to(DType::F64), do64 = dout.to(DType::F64);
  Tensor dq64 = Tensor::zeros(dq.shape(), DType::F64), dk64 = Tensor::zeros(dk.shape(), DType::F64),
         dv64 = Tensor::zeros(dv.shape(), DType::F64);
  const double* lp = l64.data<double>();
  for (std::int64_t h = 0; h < d.n_heads; ++h) {
    const std::int64_t g = h / d.group();
    // Probabilities from the saved log-sum-exp; D_i = rowsum(dO_i * O_i) = rowsum(P_i * dP_i).
    RowMatrixD P = scale * (head(q64, h) * head(k64, g).transpose());
    for (std::int64_t i = 0; i < d.T; ++i)
      for (std::int64_t j = 0; j < d.T; ++j)
        P(i, j) = visible(seg, i, j) ? std::exp(P(i, j) - lp[i * d.n_heads + h]) : 0.0;
    const RowMatrixD dP = head(do64, h) * head(v64, g).transpose();
    const Eigen::VectorXd Di = head(do64, h).cwiseProduct(head(o64, h)).rowwise().sum();
    const RowMatrixD dS = P.cwiseProduct(dP.colwise() - Di);
    head(dq64, h) = scale * (dS * head(k64, g));
    head(dk64, g) += scale * (dS.transpose() * head(q64, h));
    head(dv64, g) += P.transpose() * head(do64, h);
  }
  store(dq, dq64);
  store(dk, dk64);
  store(dv, dv64);
}

}  // namespace pocketlora::ref
