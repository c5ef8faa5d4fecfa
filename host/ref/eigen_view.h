#pragma once
// Row-major Eigen views of contiguous 1-D ([1, n]) or 2-D f32/f64 tensors: the CPU reference kernels' (and the
// tests') bridge to Eigen. Kept out of host/core/tensor.h so that loaders, tokenizers and data never compile Eigen.
#include <Eigen/Core>

#include "host/core/tensor.h"

namespace pocketlora {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// ShapeError for a non-contiguous tensor or rank > 2; a dtype other than f32 (f64 for the _d forms) throws.
Eigen::Map<RowMatrixF> as_matrix(Tensor& t);
Eigen::Map<const RowMatrixF> as_matrix(const Tensor& t);
Eigen::Map<RowMatrixD> as_matrix_d(Tensor& t);
Eigen::Map<const RowMatrixD> as_matrix_d(const Tensor& t);

}  // namespace pocketlora
