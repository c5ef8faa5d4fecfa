#include "host/ref/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "host/core/error.h"
#include "host/ref/eigen_view.h"
#include "host/ref/fast_exp.h"
#include "host/ref/float_kernel.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

namespace {

using Strided = Eigen::Map<const RowMatrixD, 0, Eigen::OuterStride<>>;
using StridedMut = Eigen::Map<RowMatrixD, 0, Eigen::OuterStride<>>;

void check_float(const char* op, const char* name, const Tensor& t) {
  if (t.dtype() != DType::F32 && t.dtype() != DType::F64)
    throw ShapeError(std::string(op) + ": " + name + " " + shape_str(t.shape()) + " is " + dtype_name(t.dtype()) +
                     ", expected f32 or f64");
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

// kv head g of a [T, Hkv, D] f32 tensor gathered into f64, both [T, D] (rows: the j-outer loops) and transposed
// [D, T] (the score loops run over keys j innermost, contiguous, so GCC vectorises them).
struct KvHead {
  std::vector<double> rows, cols;
  void gather(const float* t, std::int64_t T, std::int64_t Hkv, std::int64_t D, std::int64_t g) {
    rows.resize(static_cast<std::size_t>(T * D));
    cols.resize(static_cast<std::size_t>(T * D));
    for (std::int64_t j = 0; j < T; ++j)
      for (std::int64_t c = 0; c < D; ++c)
        cols[c * T + j] = rows[j * D + c] = static_cast<double>(t[(j * Hkv + g) * D + c]);
  }
};

// s[j] = scale * x . key_j for j in [0, n), summed over c in order (f64).
void scores(const float* x, const KvHead& kv, std::int64_t T, std::int64_t D, std::int64_t n, double scale,
            double* s) {
  std::fill(s, s + n, 0.0);
  for (std::int64_t c = 0; c < D; ++c) {
    const double xc = static_cast<double>(x[c]);
    const double* col = kv.cols.data() + c * T;
    for (std::int64_t j = 0; j < n; ++j) s[j] += xc * col[j];
  }
  for (std::int64_t j = 0; j < n; ++j) s[j] *= scale;
}

// The f32 path (every tensor f32: training): one fused pass per query row, f64 dot products and sums, the
// softmax's exponentials in vectorised f32 (host/ref/fast_exp.h), no f64 copy of a whole tensor and no [T, T]
// matrices. The pool runs one head at a time; its rows are independent.
void attention_f32(const Tensor& q, const Tensor& k, const Tensor& v, const std::int32_t* seg, Tensor& out,
                   Tensor& lse, const AttentionDims& d, double scale) {
  const std::int64_t T = d.T, H = d.n_heads, Hkv = d.n_kv_heads, D = d.head_dim;
  const float *qp = q.data<float>(), *kp = k.data<float>(), *vp = v.data<float>();
  float *op = out.data<float>(), *lp = lse.data<float>();
  parallel_for(H, T * T * D, [&](std::int64_t h0, std::int64_t h1) {
    std::vector<double> s(static_cast<std::size_t>(T)), acc(static_cast<std::size_t>(D));
    std::vector<float> p(static_cast<std::size_t>(T));
    KvHead kh, vh;
    for (std::int64_t h = h0; h < h1; ++h) {
      const std::int64_t g = h / d.group();
      kh.gather(kp, T, Hkv, D, g);
      vh.gather(vp, T, Hkv, D, g);
      for (std::int64_t i = 0; i < T; ++i) {
        scores(qp + (i * H + h) * D, kh, T, D, i + 1, scale, s.data());
        double m = -std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j <= i; ++j)
          if (visible(seg, i, j)) m = std::max(m, s[j]);
        for (std::int64_t j = 0; j <= i; ++j) p[j] = static_cast<float>(s[j] - m);
        exp_f32_inplace(p.data(), i + 1);
        if (seg)
          for (std::int64_t j = 0; j <= i; ++j) p[j] = visible(seg, i, j) ? p[j] : 0.0f;
        double sum = 0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (std::int64_t j = 0; j <= i; ++j) {
          const double e = p[j];
          sum += e;
          const double* vj = vh.rows.data() + j * D;
          for (std::int64_t c = 0; c < D; ++c) acc[c] += e * vj[c];
        }
        for (std::int64_t c = 0; c < D; ++c) op[(i * H + h) * D + c] = static_cast<float>(acc[c] / sum);
        lp[i * H + h] = static_cast<float>(m + std::log(sum));
      }
    }
  });
}

// Backward in f32 storage: probabilities from the saved lse, dS = P .* (dO V^T - rowsum(dO .* O)). dK and dV of a
// kv head sum over its query heads and rows, so the pool splits by kv head and each sums in a fixed order (query
// head, then row) into f64 accumulators: the same bits whatever the thread count.
void attention_backward_f32(const Tensor& q, const Tensor& k, const Tensor& v, const std::int32_t* seg,
                            const Tensor& out, const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk,
                            Tensor& dv, const AttentionDims& d, double scale) {
  const std::int64_t T = d.T, H = d.n_heads, Hkv = d.n_kv_heads, D = d.head_dim;
  const float *qp = q.data<float>(), *kp = k.data<float>(), *vp = v.data<float>(), *op = out.data<float>(),
              *lp = lse.data<float>(), *dop = dout.data<float>();
  float *dqp = dq.data<float>(), *dkp = dk.data<float>(), *dvp = dv.data<float>();
  parallel_for(Hkv, d.group() * T * T * D, [&](std::int64_t g0, std::int64_t g1) {
    // dK and dV transposed ([D, T]): their updates run over keys j innermost.
    std::vector<double> dk_acc(static_cast<std::size_t>(T * D)), dv_acc(static_cast<std::size_t>(T * D)),
        dq_acc(static_cast<std::size_t>(D)), s(static_cast<std::size_t>(T)), dp(static_cast<std::size_t>(T)),
        ds(static_cast<std::size_t>(T)), pd(static_cast<std::size_t>(T));
    std::vector<float> p(static_cast<std::size_t>(T));
    KvHead kh, vh;
    for (std::int64_t g = g0; g < g1; ++g) {
      kh.gather(kp, T, Hkv, D, g);
      vh.gather(vp, T, Hkv, D, g);
      std::fill(dk_acc.begin(), dk_acc.end(), 0.0);
      std::fill(dv_acc.begin(), dv_acc.end(), 0.0);
      for (std::int64_t h = g * d.group(); h < (g + 1) * d.group(); ++h)
        for (std::int64_t i = 0; i < T; ++i) {
          const float *qi = qp + (i * H + h) * D, *doi = dop + (i * H + h) * D;
          const std::int64_t n = i + 1;
          double di = 0;
          for (std::int64_t c = 0; c < D; ++c)
            di += static_cast<double>(doi[c]) * static_cast<double>(op[(i * H + h) * D + c]);
          scores(qi, kh, T, D, n, scale, s.data());
          scores(doi, vh, T, D, n, 1.0, dp.data());
          const double l = lp[i * H + h];
          for (std::int64_t j = 0; j < n; ++j) p[j] = static_cast<float>(s[j] - l);
          exp_f32_inplace(p.data(), n);
          for (std::int64_t j = 0; j < n; ++j) {
            pd[j] = visible(seg, i, j) ? static_cast<double>(p[j]) : 0.0;
            ds[j] = pd[j] * (dp[j] - di);
          }
          std::fill(dq_acc.begin(), dq_acc.end(), 0.0);
          for (std::int64_t j = 0; j < n; ++j) {
            const double* kj = kh.rows.data() + j * D;
            for (std::int64_t c = 0; c < D; ++c) dq_acc[c] += ds[j] * kj[c];
          }
          for (std::int64_t c = 0; c < D; ++c) {
            const double qc = static_cast<double>(qi[c]), dc = static_cast<double>(doi[c]);
            double *dkc = dk_acc.data() + c * T, *dvc = dv_acc.data() + c * T;
            for (std::int64_t j = 0; j < n; ++j) {
              dkc[j] += ds[j] * qc;
              dvc[j] += pd[j] * dc;
            }
          }
          for (std::int64_t c = 0; c < D; ++c) dqp[(i * H + h) * D + c] = static_cast<float>(scale * dq_acc[c]);
        }
      for (std::int64_t j = 0; j < T; ++j)
        for (std::int64_t c = 0; c < D; ++c) {
          dkp[(j * Hkv + g) * D + c] = static_cast<float>(scale * dk_acc[c * T + j]);
          dvp[(j * Hkv + g) * D + c] = static_cast<float>(dv_acc[c * T + j]);
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
  if (all_contiguous_f32({&q, &k, &v, &out, &lse})) return attention_f32(q, k, v, seg, out, lse, d, scale);
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
  if (all_contiguous_f32({&q, &k, &v, &out, &lse, &dout, &dq, &dk, &dv}))
    return attention_backward_f32(q, k, v, seg, out, lse, dout, dq, dk, dv, d, scale);
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
