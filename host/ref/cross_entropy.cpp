#include "host/ref/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "host/core/error.h"
#include "host/ref/fast_exp.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

namespace {
void check_labels(const char* op, const Tensor& labels, std::int64_t V) {
  if (labels.dtype() != DType::I32) throw ShapeError(std::string(op) + ": labels must be i32");
  for (std::int64_t t = 0; t < labels.numel(); ++t) {
    const auto l = labels.data<std::int32_t>()[t];
    if (l != kIgnoreIndex && (l < 0 || l >= V))
      throw InvalidArgument(std::string(op) + ": label " + std::to_string(l) + " at position " + std::to_string(t) +
                            " is neither -100 nor inside the vocabulary [0, " + std::to_string(V) + ")");
  }
}

// Rows are read (and written) in place in their own dtype, f32 or f64 (gradient checks), one row at a time in
// double: no f64 copy of a [T, V] chunk (Llama 3's vocabulary makes that hundreds of MB).
void check_row_operand(const char* op, const char* what, const Tensor& t) {
  if ((t.dtype() != DType::F32 && t.dtype() != DType::F64) || !t.is_contiguous())
    throw ShapeError(std::string(op) + ": " + what + " " + shape_str(t.shape()) + " " + dtype_name(t.dtype()) +
                     " must be a contiguous f32 or f64 tensor");
}

// Row max and sum over 8 lanes combined in a fixed order: vectorisable without reassociation, and the same result
// whichever thread runs the row.
constexpr std::int64_t kRowLanes = 8;

float lane_row_max(const float* x, std::int64_t n) {
  float m[kRowLanes];
  std::fill(m, m + kRowLanes, -std::numeric_limits<float>::infinity());
  std::int64_t v = 0;
  for (; v + kRowLanes <= n; v += kRowLanes)
    for (std::int64_t l = 0; l < kRowLanes; ++l) m[l] = m[l] < x[v + l] ? x[v + l] : m[l];
  for (; v < n; ++v) m[0] = m[0] < x[v] ? x[v] : m[0];
  float r = m[0];
  for (std::int64_t l = 1; l < kRowLanes; ++l) r = r < m[l] ? m[l] : r;
  return r;
}

double lane_row_sum(const float* x, std::int64_t n) {
  double acc[kRowLanes] = {};
  std::int64_t v = 0;
  for (; v + kRowLanes <= n; v += kRowLanes)
    for (std::int64_t l = 0; l < kRowLanes; ++l) acc[l] += static_cast<double>(x[v + l]);
  for (; v < n; ++v) acc[0] += static_cast<double>(x[v]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

template <typename F> void with_float_type(const Tensor& t, F&& f) {
  if (t.dtype() == DType::F32)
    f(float{});
  else
    f(double{});
}
}  // namespace

CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& lse) {
  const char* op = "ref::cross_entropy";
  check_cross_entropy(op, logits.shape(), labels.shape());
  check_row_operand(op, "logits", logits);
  const std::int64_t T = logits.dim(0), V = logits.dim(1);
  check_labels(op, labels, V);
  Tensor lsed = Tensor::zeros({T}, DType::F64);
  double* l = lsed.data<double>();
  with_float_type(logits, [&](auto zero) {
    using E = decltype(zero);
    const E* x = logits.data<E>();
    // Rows are independent: the parallel loop gives the same values as a serial one.
    parallel_for(T, V, [&](std::int64_t t0, std::int64_t t1) {
      std::vector<float> e(std::is_same_v<E, float> ? static_cast<std::size_t>(V) : 0);
      for (std::int64_t t = t0; t < t1; ++t) {
        const E* row = x + t * V;
        double m = -std::numeric_limits<double>::infinity();
        double s = 0;
        if constexpr (std::is_same_v<E, float>) {  // f32 logits: vectorised f32 exponentials (host/ref/fast_exp.h)
          m = static_cast<double>(lane_row_max(row, V));
          for (std::int64_t v = 0; v < V; ++v) e[v] = static_cast<float>(static_cast<double>(row[v]) - m);
          exp_f32_inplace(e.data(), V);
          s = lane_row_sum(e.data(), V);
        } else {
          for (std::int64_t v = 0; v < V; ++v) m = std::max(m, static_cast<double>(row[v]));
          for (std::int64_t v = 0; v < V; ++v) s += std::exp(static_cast<double>(row[v]) - m);
        }
        l[t] = m + std::log(s);
      }
    });
  });
  CrossEntropyResult r;
  double total = 0;  // in row order: deterministic
  for (std::int64_t t = 0; t < T; ++t) {
    const auto label = labels.data<std::int32_t>()[t];
    if (label == kIgnoreIndex) continue;
    const double target = logits.dtype() == DType::F32 ? logits.data<float>()[t * V + label]
                                                       : logits.data<double>()[t * V + label];
    total += l[t] - target;
    ++r.valid;
  }
  r.sum = total;
  r.loss = r.valid ? total / static_cast<double>(r.valid) : 0.0;
  lse.copy_from(lsed);
  return r;
}

void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& lse, Tensor& dlogits,
                            double scale) {
  const char* op = "ref::cross_entropy_backward";
  check_cross_entropy(op, logits.shape(), labels.shape());
  check_row_operand(op, "logits", logits);
  check_row_operand(op, "dlogits", dlogits);
  if (dlogits.shape() != logits.shape())
    throw ShapeError(std::string(op) + ": dlogits " + shape_str(dlogits.shape()) + " must match logits " +
                     shape_str(logits.shape()));
  const std::int64_t T = logits.dim(0), V = logits.dim(1);
  check_labels(op, labels, V);
  const Tensor lsed = lse.to(DType::F64);
  const double* l = lsed.data<double>();
  const std::int32_t* y = labels.data<std::int32_t>();
  with_float_type(logits, [&](auto in_zero) {
    with_float_type(dlogits, [&](auto out_zero) {
      using In = decltype(in_zero);
      using Out = decltype(out_zero);
      const In* x = logits.data<In>();
      Out* d = dlogits.data<Out>();
      // Each element is read before it is written: dlogits may be logits itself.
      parallel_for(T, V, [&](std::int64_t t0, std::int64_t t1) {
        std::vector<float> e(std::is_same_v<In, float> ? static_cast<std::size_t>(V) : 0);
        for (std::int64_t t = t0; t < t1; ++t) {
          const std::int64_t label = y[t];
          if (label == kIgnoreIndex) {
            std::fill(d + t * V, d + (t + 1) * V, Out{0});
            continue;
          }
          if constexpr (std::is_same_v<In, float>) {  // f32 logits: vectorised f32 exponentials
            for (std::int64_t v = 0; v < V; ++v) e[v] = static_cast<float>(static_cast<double>(x[t * V + v]) - l[t]);
            exp_f32_inplace(e.data(), V);
          }
          for (std::int64_t v = 0; v < V; ++v) {
            const std::int64_t i = t * V + v;
            double p;
            if constexpr (std::is_same_v<In, float>) p = e[v];
            else p = std::exp(static_cast<double>(x[i]) - l[t]);
            d[i] = static_cast<Out>(scale * (p - (v == label ? 1.0 : 0.0)));
          }
        }
      });
    });
  });
}

}  // namespace pocketlora::ref
