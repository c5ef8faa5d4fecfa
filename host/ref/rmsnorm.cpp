#include "host/ref/rmsnorm.h"

#include <cmath>

#include "host/core/error.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

void rmsnorm(const Tensor& x, const Tensor& w, Tensor& y, Tensor& rstd, float eps) {
  const auto [rows, dim] = check_rmsnorm_shapes("ref::rmsnorm", x.shape(), w.shape());
  if (y.shape() != x.shape() || rstd.numel() != rows)
    throw ShapeError("ref::rmsnorm: y " + shape_str(y.shape()) + " / rstd " + shape_str(rstd.shape()) +
                     " do not fit x " + shape_str(x.shape()));
  Tensor xd = x.to(DType::F64), wd = w.to(DType::F64);
  const double* xp = xd.data<double>();
  const double* wp = wd.data<double>();
  Tensor yd = Tensor::zeros(x.shape(), DType::F64), rd = Tensor::zeros({rows}, DType::F64);
#pragma omp parallel for schedule(static) if (rows * dim >= kParallelMinElements)
  for (std::int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (std::int64_t i = 0; i < dim; ++i) ss += xp[r * dim + i] * xp[r * dim + i];
    const double s = 1.0 / std::sqrt(ss / static_cast<double>(dim) + eps);
    rd.data<double>()[r] = s;
    for (std::int64_t i = 0; i < dim; ++i) yd.data<double>()[r * dim + i] = xp[r * dim + i] * s * wp[i];
  }
  y.copy_from(yd);
  rstd.copy_from(rd);
}

void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dw,
                      bool accumulate_dw) {
  const auto [rows, dim] = check_rmsnorm_shapes("ref::rmsnorm_backward", x.shape(), w.shape());
  if (dy.shape() != x.shape() || dx.shape() != x.shape() || dw.shape() != w.shape() || rstd.numel() != rows)
    throw ShapeError("ref::rmsnorm_backward: dy " + shape_str(dy.shape()) + ", dx " + shape_str(dx.shape()) +
                     ", dw " + shape_str(dw.shape()) + " do not fit x " + shape_str(x.shape()));
  Tensor xd = x.to(DType::F64), wd = w.to(DType::F64), rd = rstd.to(DType::F64), gd = dy.to(DType::F64);
  Tensor dxd = Tensor::zeros(x.shape(), DType::F64), dwd = dw.to(DType::F64);
  if (!accumulate_dw) dwd = Tensor::zeros(w.shape(), DType::F64);
  const double *xp = xd.data<double>(), *wp = wd.data<double>(), *gp = gd.data<double>();
  const double* sp = rd.data<double>();
  // dx row by row; dw column by column (each column summed over rows in order, whatever the thread count).
#pragma omp parallel for schedule(static) if (rows * dim >= kParallelMinElements)
  for (std::int64_t r = 0; r < rows; ++r) {
    const double s = sp[r];
    double c = 0;
    for (std::int64_t i = 0; i < dim; ++i) c += gp[r * dim + i] * wp[i] * xp[r * dim + i];
    const double k = s * s * s * c / static_cast<double>(dim);
    for (std::int64_t i = 0; i < dim; ++i)
      dxd.data<double>()[r * dim + i] = s * gp[r * dim + i] * wp[i] - k * xp[r * dim + i];
  }
#pragma omp parallel for schedule(static) if (rows * dim >= kParallelMinElements)
  for (std::int64_t i = 0; i < dim; ++i)
    for (std::int64_t r = 0; r < rows; ++r) dwd.data<double>()[i] += gp[r * dim + i] * xp[r * dim + i] * sp[r];
  dx.copy_from(dxd);
  dw.copy_from(dwd);
}

}  // namespace pocketlora::ref
