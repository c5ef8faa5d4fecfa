#include "host/ref/swiglu.h"

#include <cmath>

#include "host/core/error.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

void swiglu(const Tensor& g, const Tensor& u, Tensor& h) {
  check_same_shapes("ref::swiglu", {{"g", &g.shape()}, {"u", &u.shape()}, {"h", &h.shape()}});
  Tensor gd = g.to(DType::F64), ud = u.to(DType::F64), hd = Tensor::zeros(g.shape(), DType::F64);
  const std::int64_t n = g.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
  for (std::int64_t i = 0; i < n; ++i) {
    const double x = gd.data<double>()[i];
    hd.data<double>()[i] = x / (1.0 + std::exp(-x)) * ud.data<double>()[i];
  }
  h.copy_from(hd);
}

void swiglu_backward(const Tensor& g, const Tensor& u, const Tensor& dh, Tensor& dg, Tensor& du) {
  check_same_shapes("ref::swiglu_backward",
                    {{"g", &g.shape()}, {"u", &u.shape()}, {"dh", &dh.shape()}, {"dg", &dg.shape()}, {"du", &du.shape()}});
  Tensor gd = g.to(DType::F64), ud = u.to(DType::F64), hd = dh.to(DType::F64);
  Tensor dgd = Tensor::zeros(g.shape(), DType::F64), dud = Tensor::zeros(g.shape(), DType::F64);
  const std::int64_t n = g.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
  for (std::int64_t i = 0; i < n; ++i) {
    const double x = gd.data<double>()[i], s = 1.0 / (1.0 + std::exp(-x));
    dgd.data<double>()[i] = hd.data<double>()[i] * ud.data<double>()[i] * s * (1.0 + x * (1.0 - s));
    dud.data<double>()[i] = hd.data<double>()[i] * x * s;
  }
  dg.copy_from(dgd);
  du.copy_from(dud);
}

void add(const Tensor& a, const Tensor& b, Tensor& y, float alpha) {
  check_same_shapes("ref::add", {{"a", &a.shape()}, {"b", &b.shape()}, {"y", &y.shape()}});
  Tensor ad = a.to(DType::F64), bd = b.to(DType::F64);
  const std::int64_t n = a.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
  for (std::int64_t i = 0; i < n; ++i) ad.data<double>()[i] += alpha * bd.data<double>()[i];
  y.copy_from(ad);
}

}  // namespace pocketlora::ref
