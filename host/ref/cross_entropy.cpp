#include "host/ref/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "host/core/error.h"

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
}  // namespace

CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& lse) {
  check_cross_entropy("ref::cross_entropy", logits.shape(), labels.shape());
  const std::int64_t T = logits.dim(0), V = logits.dim(1);
  check_labels("ref::cross_entropy", labels, V);
  Tensor ld = logits.to(DType::F64), lsed = Tensor::zeros({T}, DType::F64);
  CrossEntropyResult r;
  double total = 0;
  for (std::int64_t t = 0; t < T; ++t) {
    const double* row = ld.data<double>() + t * V;
    double m = -std::numeric_limits<double>::infinity();
    for (std::int64_t v = 0; v < V; ++v) m = std::max(m, row[v]);
    double s = 0;
    for (std::int64_t v = 0; v < V; ++v) s += std::exp(row[v] - m);
    const double l = m + std::log(s);
    lsed.data<double>()[t] = l;
    const auto label = labels.data<std::int32_t>()[t];
    if (label != kIgnoreIndex) {
      total += l - row[label];
      ++r.valid;
    }
  }
  r.sum = total;
  r.loss = r.valid ? total / static_cast<double>(r.valid) : 0.0;
  lse.copy_from(lsed);
  return r;
}

void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& lse, Tensor& dlogits,
                            double scale) {
  check_cross_entropy("ref::cross_entropy_backward", logits.shape(), labels.shape());
  const std::int64_t T = logits.dim(0), V = logits.dim(1);
  check_labels("ref::cross_entropy_backward", labels, V);
  Tensor ld = logits.to(DType::F64), lsed = lse.to(DType::F64), gd = Tensor::zeros(logits.shape(), DType::F64);
  for (std::int64_t t = 0; t < T; ++t) {
    const auto label = labels.data<std::int32_t>()[t];
    if (label == kIgnoreIndex) continue;
    for (std::int64_t v = 0; v < V; ++v) {
      const double p = std::exp(ld.data<double>()[t * V + v] - lsed.data<double>()[t]);
      gd.data<double>()[t * V + v] = scale * (p - (v == label ? 1.0 : 0.0));
    }
  }
  dlogits.copy_from(gd);
}

}  // namespace pocketlora::ref
