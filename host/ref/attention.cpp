#include "host/ref/attention.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "host/core/error.h"
#include "host/ref/eigen_view.h"

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
