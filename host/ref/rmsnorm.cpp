#include "host/ref/rmsnorm.h"

#include <cmath>

#include "host/core/error.h"
#include "host/ref/float_kernel.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

namespace {

// Sum of term(i) over i in [0, n) in double, in 4 lanes added in a fixed order: one running sum is a chain of
// dependent adds (the row sums were most of RMSNorm's time at dim 64); the result does not depend on the thread.
template <typename F> double lane_sum(std::int64_t n, F&& term) {
  double acc[4] = {};
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (std::int64_t l = 0; l < 4; ++l) acc[l] += term(i + l);
  for (; i < n; ++i) acc[0] += term(i);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// f64 row sums over E storage (host/ref/float_kernel.h); rows are independent.
template <typename E>
void rmsnorm_kernel(const Tensor& x, const Tensor& w, Tensor& y, Tensor& rstd, float eps, std::int64_t rows,
                    std::int64_t dim) {
  const E *xp = x.data<E>(), *wp = w.data<E>();
  E *yp = y.data<E>(), *rp = rstd.data<E>();
  parallel_for(rows, dim, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const E* xr = xp + r * dim;
      const double ss = lane_sum(dim, [&](std::int64_t i) {
        const auto v = static_cast<double>(xr[i]);
        return v * v;
      });
      const double s = 1.0 / std::sqrt(ss / static_cast<double>(dim) + eps);
      rp[r] = static_cast<E>(s);
      for (std::int64_t i = 0; i < dim; ++i)
        yp[r * dim + i] = static_cast<E>(static_cast<double>(xr[i]) * s * static_cast<double>(wp[i]));
    }
  });
}

// dw first (column by column, each summed over rows in order), then dx row by row: dx may alias dy or x.
template <typename E>
void rmsnorm_backward_kernel(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy, Tensor& dx,
                             Tensor& dw, bool accumulate_dw, std::int64_t rows, std::int64_t dim) {
  const E *xp = x.data<E>(), *wp = w.data<E>(), *sp = rstd.data<E>(), *gp = dy.data<E>();
  E *dxp = dx.data<E>(), *dwp = dw.data<E>();
  parallel_for(dim, rows, [&](std::int64_t i0, std::int64_t i1) {
    // Eight columns at a time in registers, each still summed over rows in order: vectorised, the same bits.
    constexpr std::int64_t kCols = 8;
    std::int64_t i = i0;
    for (; i + kCols <= i1; i += kCols) {
      double acc[kCols];
      for (std::int64_t l = 0; l < kCols; ++l) acc[l] = accumulate_dw ? static_cast<double>(dwp[i + l]) : 0.0;
      for (std::int64_t r = 0; r < rows; ++r) {
        const E *g = gp + r * dim + i, *xr = xp + r * dim + i;
        const double s = static_cast<double>(sp[r]);
        for (std::int64_t l = 0; l < kCols; ++l)
          acc[l] += static_cast<double>(g[l]) * static_cast<double>(xr[l]) * s;
      }
      for (std::int64_t l = 0; l < kCols; ++l) dwp[i + l] = static_cast<E>(acc[l]);
    }
    for (; i < i1; ++i) {
      double acc = accumulate_dw ? static_cast<double>(dwp[i]) : 0.0;
      for (std::int64_t r = 0; r < rows; ++r)
        acc += static_cast<double>(gp[r * dim + i]) * static_cast<double>(xp[r * dim + i]) *
               static_cast<double>(sp[r]);
      dwp[i] = static_cast<E>(acc);
    }
  });
  parallel_for(rows, dim, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const double s = static_cast<double>(sp[r]);
      const double c = lane_sum(dim, [&](std::int64_t i) {
        return static_cast<double>(gp[r * dim + i]) * static_cast<double>(wp[i]) * static_cast<double>(xp[r * dim + i]);
      });
      const double k = s * s * s * c / static_cast<double>(dim);
      for (std::int64_t i = 0; i < dim; ++i)
        dxp[r * dim + i] = static_cast<E>(s * static_cast<double>(gp[r * dim + i]) * static_cast<double>(wp[i]) -
                                          k * static_cast<double>(xp[r * dim + i]));
    }
  });
}

}  // namespace

void rmsnorm(const Tensor& x, const Tensor& w, Tensor& y, Tensor& rstd, float eps) {
  const auto [rows, dim] = check_rmsnorm_shapes("ref::rmsnorm", x.shape(), w.shape());
  if (y.shape() != x.shape() || rstd.numel() != rows)
    throw ShapeError("ref::rmsnorm: y " + shape_str(y.shape()) + " / rstd " + shape_str(rstd.shape()) +
                     " do not fit x " + shape_str(x.shape()));
  if (all_contiguous_f32({&x, &w, &y, &rstd})) return rmsnorm_kernel<float>(x, w, y, rstd, eps, rows, dim);
  const Tensor xd = x.to(DType::F64), wd = w.to(DType::F64);
  Tensor yd = Tensor::zeros(x.shape(), DType::F64), rd = Tensor::zeros({rows}, DType::F64);
  rmsnorm_kernel<double>(xd, wd, yd, rd, eps, rows, dim);
  y.copy_from(yd);
  rstd.copy_from(rd);
}

void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dw,
                      bool accumulate_dw) {
  const auto [rows, dim] = check_rmsnorm_shapes("ref::rmsnorm_backward", x.shape(), w.shape());
  if (dy.shape() != x.shape() || dx.shape() != x.shape() || dw.shape() != w.shape() || rstd.numel() != rows)
    throw ShapeError("ref::rmsnorm_backward: dy " + shape_str(dy.shape()) + ", dx " + shape_str(dx.shape()) +
                     ", dw " + shape_str(dw.shape()) + " do not fit x " + shape_str(x.shape()));
  if (all_contiguous_f32({&x, &w, &rstd, &dy, &dx, &dw}))
    return rmsnorm_backward_kernel<float>(x, w, rstd, dy, dx, dw, accumulate_dw, rows, dim);
  const Tensor xd = x.to(DType::F64), wd = w.to(DType::F64), rd = rstd.to(DType::F64), gd = dy.to(DType::F64);
  Tensor dxd = Tensor::zeros(x.shape(), DType::F64), dwd = dw.to(DType::F64);
  rmsnorm_backward_kernel<double>(xd, wd, rd, gd, dxd, dwd, accumulate_dw, rows, dim);
  dx.copy_from(dxd);
  dw.copy_from(dwd);
}

}  // namespace pocketlora::ref
