#include "host/ref/matmul.h"

#include <algorithm>
#include <initializer_list>
#include <type_traits>

#include "host/core/error.h"
#include "host/ref/blas.h"

namespace pocketlora::ref {

namespace {
// C = alpha * op(A) * op(B)^T (+C) in T (float: f16/bf16 operands widened, f32 accumulation; double: f64 for the
// gradient checks). The result is rounded once into C's dtype.
//
// A narrow B (an f16 output head [vocab, dim]) is widened a panel of its rows at a time: widening all of it per
// call would allocate 1 GiB for a 128256 x 2048 head on every chunk of the step.
constexpr std::int64_t kWidenPanelElements = std::int64_t{1} << 20;  // 4 MiB of f32 per panel

void matmul_panelled_b(const Tensor& a, const Tensor& b, Tensor& c, const MatmulOptions& opt, std::int64_t M,
                       std::int64_t N, std::int64_t K) {
  const Tensor af = a.dtype() == DType::F32 ? a : a.to(DType::F32);
  const Tensor bc = b.is_contiguous() ? b : b.clone();
  const bool wide_c = c.dtype() == DType::F32;
  Tensor cw = wide_c ? c : (opt.accumulate ? c.to(DType::F32) : Tensor::zeros(c.shape(), DType::F32));
  const std::int64_t ldb = b.dim(1), rows = b.dim(0);
  const std::int64_t panel = std::max<std::int64_t>(1, kWidenPanelElements / std::max<std::int64_t>(ldb, 1));
  const float* A = af.data<float>();
  float* C = cw.data<float>();
  for (std::int64_t r0 = 0; r0 < rows; r0 += panel) {
    const std::int64_t r1 = std::min(rows, r0 + panel);
    const Tensor bp = bc.slice_rows(r0, r1).to(DType::F32);
    if (!opt.trans_b) {
      // B's rows r0..r1 are C's columns r0..r1: C[:, r0:r1] = alpha * op(A) * B[r0:r1, :]^T (+C).
      gemm(opt.trans_a, true, M, r1 - r0, K, opt.alpha, A, a.dim(1), bp.data<float>(), ldb,
           opt.accumulate ? 1.0f : 0.0f, C + r0, N);
    } else {
      // B's rows r0..r1 are the reduction's k range: C (+)= alpha * op(A)[:, r0:r1] * B[r0:r1, :].
      const float* Ak = opt.trans_a ? A + r0 * a.dim(1) : A + r0;
      gemm(opt.trans_a, false, M, N, r1 - r0, opt.alpha, Ak, a.dim(1), bp.data<float>(), ldb,
           opt.accumulate || r0 > 0 ? 1.0f : 0.0f, C, N);
    }
  }
  if (!wide_c) c.copy_from(cw);
}

template <typename T>
void matmul_impl(const Tensor& a, const Tensor& b, Tensor& c, const MatmulOptions& opt, std::int64_t M,
                 std::int64_t N, std::int64_t K) {
  const DType dt = DTypeOf<T>::value;
  if constexpr (std::is_same_v<T, float>) {
    if (b.dtype() != dt && b.numel() > kWidenPanelElements) return matmul_panelled_b(a, b, c, opt, M, N, K);
  }
  const Tensor af = a.dtype() == dt ? a : a.to(dt);
  const Tensor bf = b.dtype() == dt ? b : b.to(dt);
  const bool wide_c = c.dtype() == dt;
  Tensor cw = wide_c ? c : (opt.accumulate ? c.to(dt) : Tensor::zeros(c.shape(), dt));
  T* C = cw.data<T>();
  const T* A = af.data<T>();
  const T* B = bf.data<T>();
  const auto alpha = static_cast<T>(opt.alpha);
  const T beta = opt.accumulate ? T(1) : T(0);
  if constexpr (std::is_same_v<T, float>) {
    if (M == 1 && !opt.trans_a && !opt.trans_b) {  // one token: y[N] = alpha * B[N,K] * x (+y) as a GEMV
      gemv(N, K, alpha, B, K, A, beta, C);
      if (!wide_c) c.copy_from(cw);
      return;
    }
  }
  // Row-major: op(B)^T is B itself when B is stored [N,K] (BLAS transposes it), B^T when stored [K,N].
  gemm(opt.trans_a, !opt.trans_b, M, N, K, alpha, A, a.dim(1), B, b.dim(1), beta, C, N);
  if (!wide_c) c.copy_from(cw);
}

bool all_f64(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t->dtype() != DType::F64) return false;
  return true;
}

// dA[M,K] = alpha * dC[M,N] * B[N,K], dB[N,K] = alpha * dC^T * A[M,K], each rounded once into its dtype.
template <typename T>
void matmul_backward_impl(const Tensor& a, const Tensor& b, const Tensor& dc, Tensor& da, Tensor& db, float alpha) {
  const DType dt = DTypeOf<T>::value;
  const std::int64_t M = a.dim(0), K = a.dim(1), N = b.dim(0);
  const Tensor at = a.to(dt), bt = b.to(dt), dct = dc.to(dt);
  Tensor dA = Tensor::zeros(a.shape(), dt), dB = Tensor::zeros(b.shape(), dt);
  gemm(false, false, M, K, N, static_cast<T>(alpha), dct.data<T>(), N, bt.data<T>(), K, T(0), dA.data<T>(), K);
  gemm(true, false, N, K, M, static_cast<T>(alpha), dct.data<T>(), N, at.data<T>(), K, T(0), dB.data<T>(), K);
  da.copy_from(dA);
  db.copy_from(dB);
}
}  // namespace

void matmul(const Tensor& a, const Tensor& b, Tensor& c, const MatmulOptions& opt) {
  const auto [M, N, K] = check_matmul_shapes("ref::matmul", a.shape(), b.shape(), c.shape(), opt);
  if (a.dtype() == DType::F64) matmul_impl<double>(a, b, c, opt, M, N, K);
  else matmul_impl<float>(a, b, c, opt, M, N, K);
}

void matmul_backward(const Tensor& a, const Tensor& b, const Tensor& dc, Tensor& da, Tensor& db,
                     const MatmulOptions& opt) {
  if (opt.trans_a || opt.trans_b)
    throw InvalidArgument("ref::matmul_backward: transposed operands are not supported (use the untransposed form)");
  check_matmul_shapes("ref::matmul_backward", a.shape(), b.shape(), dc.shape());
  if (da.shape() != a.shape() || db.shape() != b.shape())
    throw ShapeError("ref::matmul_backward: dA " + shape_str(da.shape()) + " / dB " + shape_str(db.shape()) +
                     " must match A " + shape_str(a.shape()) + " / B " + shape_str(b.shape()));
  // f64 when every operand is f64 (gradient checks), else f32 like the forward.
  if (all_f64({&a, &b, &dc})) matmul_backward_impl<double>(a, b, dc, da, db, opt.alpha);
  else matmul_backward_impl<float>(a, b, dc, da, db, opt.alpha);
}

}  // namespace pocketlora::ref
