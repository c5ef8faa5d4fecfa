#include "host/ref/swiglu.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "host/core/error.h"
#include "host/ref/fast_exp.h"
#include "host/ref/float_kernel.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

namespace {

constexpr std::int64_t kExpBlock = 256;

// exp(-g[i]) for i in [b, b + n) into e: libm's double exp for f64, else exp_f32 in a loop GCC vectorises
// (host/ref/fast_exp.h; <= 3e-7 relative, within the f32 results' own rounding).
template <typename E> void exp_neg(const E* g, std::int64_t n, double* e) {
  if constexpr (std::is_same_v<E, float>) {
    float buf[kExpBlock];
    for (std::int64_t k = 0; k < n; ++k) buf[k] = -g[k];
    exp_f32_inplace(buf, n);
    for (std::int64_t k = 0; k < n; ++k) e[k] = buf[k];
  } else {
    for (std::int64_t k = 0; k < n; ++k) e[k] = std::exp(-g[k]);
  }
}

// Element-wise in double over E storage (host/ref/float_kernel.h), the sigmoid's exp as above. Every element's
// inputs are read before its outputs are written, so an output may alias an input.
template <typename E> void swiglu_kernel(const Tensor& g, const Tensor& u, Tensor& h) {
  const E *gp = g.data<E>(), *up = u.data<E>();
  E* hp = h.data<E>();
  parallel_for(g.numel(), 1, [&](std::int64_t b, std::int64_t e) {
    double ex[kExpBlock];
    for (std::int64_t i0 = b; i0 < e; i0 += kExpBlock) {  // blocks, so that the element loop vectorises
      const std::int64_t n = std::min(kExpBlock, e - i0);
      exp_neg(gp + i0, n, ex);
      for (std::int64_t k = 0; k < n; ++k) {
        const double x = static_cast<double>(gp[i0 + k]);
        hp[i0 + k] = static_cast<E>(x / (1.0 + ex[k]) * static_cast<double>(up[i0 + k]));
      }
    }
  });
}

template <typename E> void swiglu_backward_kernel(const Tensor& g, const Tensor& u, const Tensor& dh, Tensor& dg,
                                                  Tensor& du) {
  const E *gp = g.data<E>(), *up = u.data<E>(), *hp = dh.data<E>();
  E *dgp = dg.data<E>(), *dup = du.data<E>();
  parallel_for(g.numel(), 1, [&](std::int64_t b, std::int64_t e) {
    double ex[kExpBlock];
    for (std::int64_t i0 = b; i0 < e; i0 += kExpBlock) {
      const std::int64_t n = std::min(kExpBlock, e - i0);
      exp_neg(gp + i0, n, ex);
      for (std::int64_t k = 0; k < n; ++k) {
        const std::int64_t i = i0 + k;
        const double x = static_cast<double>(gp[i]), s = 1.0 / (1.0 + ex[k]);
        const double d = static_cast<double>(hp[i]), uv = static_cast<double>(up[i]);
        dgp[i] = static_cast<E>(d * uv * s * (1.0 + x * (1.0 - s)));
        dup[i] = static_cast<E>(d * x * s);
      }
    }
  });
}

template <typename E> void add_kernel(const Tensor& a, const Tensor& b, Tensor& y, float alpha) {
  const E *ap = a.data<E>(), *bp = b.data<E>();
  E* yp = y.data<E>();
  parallel_for(a.numel(), 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i)
      yp[i] = static_cast<E>(static_cast<double>(ap[i]) + alpha * static_cast<double>(bp[i]));
  });
}

}  // namespace

void swiglu(const Tensor& g, const Tensor& u, Tensor& h) {
  check_same_shapes("ref::swiglu", {{"g", &g.shape()}, {"u", &u.shape()}, {"h", &h.shape()}});
  if (all_contiguous_f32({&g, &u, &h})) return swiglu_kernel<float>(g, u, h);
  const Tensor gd = g.to(DType::F64), ud = u.to(DType::F64);
  Tensor hd = Tensor::zeros(g.shape(), DType::F64);
  swiglu_kernel<double>(gd, ud, hd);
  h.copy_from(hd);
}

void swiglu_backward(const Tensor& g, const Tensor& u, const Tensor& dh, Tensor& dg, Tensor& du) {
  check_same_shapes("ref::swiglu_backward",
                    {{"g", &g.shape()}, {"u", &u.shape()}, {"dh", &dh.shape()}, {"dg", &dg.shape()}, {"du", &du.shape()}});
  if (all_contiguous_f32({&g, &u, &dh, &dg, &du})) return swiglu_backward_kernel<float>(g, u, dh, dg, du);
  const Tensor gd = g.to(DType::F64), ud = u.to(DType::F64), hd = dh.to(DType::F64);
  Tensor dgd = Tensor::zeros(g.shape(), DType::F64), dud = Tensor::zeros(g.shape(), DType::F64);
  swiglu_backward_kernel<double>(gd, ud, hd, dgd, dud);
  dg.copy_from(dgd);
  du.copy_from(dud);
}

void add(const Tensor& a, const Tensor& b, Tensor& y, float alpha) {
  check_same_shapes("ref::add", {{"a", &a.shape()}, {"b", &b.shape()}, {"y", &y.shape()}});
  if (all_contiguous_f32({&a, &b, &y})) return add_kernel<float>(a, b, y, alpha);
  const Tensor ad = a.to(DType::F64), bd = b.to(DType::F64);
  Tensor yd = Tensor::zeros(a.shape(), DType::F64);
  add_kernel<double>(ad, bd, yd, alpha);
  y.copy_from(yd);
}

}  // namespace pocketlora::ref
