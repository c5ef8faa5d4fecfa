#include "host/ref/matmul.h"

#include <cstring>

#include "host/util/error.h"

namespace pocketlora {

std::array<std::int64_t, 3> check_matmul_shapes(const char* op, const Shape& a, const Shape& b, const Shape& c,
                                                const MatmulOptions& opt) {
  auto fail = [&](const std::string& why) {
    throw ShapeError(std::string(op) + ": " + why + " (A " + shape_str(a) + (opt.trans_a ? " transposed" : "") +
                     ", B " + shape_str(b) + (opt.trans_b ? " transposed" : "") + ", C " + shape_str(c) +
                     "; expected op(A) [M,K], op(B) [N,K], C [M,N])");
  };
  if (a.size() != 2 || b.size() != 2 || c.size() != 2) fail("all operands must be 2-D");
  const std::int64_t M = opt.trans_a ? a[1] : a[0], Ka = opt.trans_a ? a[0] : a[1];
  const std::int64_t N = opt.trans_b ? b[1] : b[0], Kb = opt.trans_b ? b[0] : b[1];
  if (Ka != Kb) fail("K of A (" + std::to_string(Ka) + ") != K of B (" + std::to_string(Kb) + ")");
  if (c[0] != M || c[1] != N) fail("C must be [M,N]");
  return {M, N, Ka};
}

namespace ref {

namespace {
template <typename M>
void matmul_impl(const Tensor& a, const Tensor& b, Tensor& c, const MatmulOptions& opt) {
  using Mat = Eigen::Matrix<typename M::Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto dt = DTypeOf<typename M::Scalar>::value;
  Tensor af = a.dtype() == dt ? a : a.to(dt);
  Tensor bf = b.dtype() == dt ? b : b.to(dt);
  Eigen::Map<const Mat> A(af.data<typename M::Scalar>(), a.dim(0), a.dim(1));
  Eigen::Map<const Mat> B(bf.data<typename M::Scalar>(), b.dim(0), b.dim(1));
  const auto s = static_cast<typename M::Scalar>(opt.alpha);
  Mat r = opt.trans_a ? (opt.trans_b ? Mat(A.transpose() * B * s) : Mat(A.transpose() * B.transpose() * s))
                      : (opt.trans_b ? Mat(A * B * s) : Mat(A * B.transpose() * s));
  if (c.dtype() == dt) {
    Eigen::Map<Mat> C(c.data<typename M::Scalar>(), c.dim(0), c.dim(1));
    if (opt.accumulate) C += r;
    else C = r;
  } else {  // f16/bf16 output: accumulate in wide precision, round once
    Tensor cw = c.to(dt);
    Eigen::Map<Mat> C(cw.data<typename M::Scalar>(), c.dim(0), c.dim(1));
    if (opt.accumulate) C += r;
    else C = r;
    c.copy_from(cw);
  }
}
}  // namespace

void matmul(const Tensor& a, const Tensor& b, Tensor& c, const MatmulOptions& opt) {
  check_matmul_shapes("ref::matmul", a.shape(), b.shape(), c.shape(), opt);
  if (a.dtype() == DType::F64) matmul_impl<RowMatrixD>(a, b, c, opt);
  else matmul_impl<RowMatrixF>(a, b, c, opt);
}

void matmul_backward(const Tensor& a, const Tensor& b, const Tensor& dc, Tensor& da, Tensor& db,
                     const MatmulOptions& opt) {
  if (opt.trans_a || opt.trans_b)
    throw InvalidArgument("ref::matmul_backward: transposed operands are not supported (use the untransposed form)");
  check_matmul_shapes("ref::matmul_backward", a.shape(), b.shape(), dc.shape());
  if (da.shape() != a.shape() || db.shape() != b.shape())
    throw ShapeError("ref::matmul_backward: dA " + shape_str(da.shape()) + " / dB " + shape_str(db.shape()) +
                     " must match A " + shape_str(a.shape()) + " / B " + shape_str(b.shape()));
  // dA[M,K] = alpha * dC[M,N] * B[N,K]  ==  matmul(dC, B^T); dB[N,K] = alpha * dC^T * A.
  Tensor dct = dc.to(DType::F64), at = a.to(DType::F64), bt = b.to(DType::F64);
  RowMatrixD dA = opt.alpha * (dct.matrix_d() * bt.matrix_d());
  RowMatrixD dB = opt.alpha * (dct.matrix_d().transpose() * at.matrix_d());
  da.copy_from(Tensor::view(dA.data(), a.shape(), DType::F64));
  db.copy_from(Tensor::view(dB.data(), b.shape(), DType::F64));
}

}  // namespace ref
}  // namespace pocketlora
