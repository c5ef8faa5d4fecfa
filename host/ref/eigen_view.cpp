#include "host/ref/eigen_view.h"

#include "host/core/error.h"

namespace pocketlora {

namespace {
std::pair<Eigen::Index, Eigen::Index> matrix_dims(const Tensor& t) {
  if (!t.is_contiguous()) throw ShapeError("matrix view of a non-contiguous tensor " + shape_str(t.shape()));
  if (t.rank() == 1) return {1, t.dim(0)};
  if (t.rank() == 2) return {t.dim(0), t.dim(1)};
  throw ShapeError("matrix view needs a 1-D or 2-D tensor, got " + shape_str(t.shape()));
}
}  // namespace

Eigen::Map<RowMatrixF> as_matrix(Tensor& t) {
  auto [r, c] = matrix_dims(t);
  return {t.data<float>(), r, c};
}
Eigen::Map<const RowMatrixF> as_matrix(const Tensor& t) {
  auto [r, c] = matrix_dims(t);
  return {t.data<float>(), r, c};
}
Eigen::Map<RowMatrixD> as_matrix_d(Tensor& t) {
  auto [r, c] = matrix_dims(t);
  return {t.data<double>(), r, c};
}
Eigen::Map<const RowMatrixD> as_matrix_d(const Tensor& t) {
  auto [r, c] = matrix_dims(t);
  return {t.data<double>(), r, c};
}

}  // namespace pocketlora
