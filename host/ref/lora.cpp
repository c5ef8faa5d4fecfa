#include "host/ref/lora.h"

#include <cmath>

#include "host/core/error.h"
#include "host/ref/eigen_view.h"
#include "shaders/common/philox.h"

namespace pocketlora::ref {

namespace {
RowMatrixD as_d(const Tensor& t) { return as_matrix_d(t.to(DType::F64)); }
void store(Tensor& dst, const RowMatrixD& v, bool accumulate) {
  RowMatrixD r = accumulate ? RowMatrixD(as_d(dst) + v) : v;
  dst.copy_from(Tensor::view(r.data(), dst.shape(), DType::F64));
}
}  // namespace

void lora_forward(const Tensor& x, const Tensor& a, const Tensor& b, Tensor& y, Tensor& t, const LoraDropoutKey& key,
                  const LoraOptions& opt) {
  const auto [M, K, N, r] = check_lora_shapes("ref::lora_forward", x.shape(), a.shape(), b.shape(), &y.shape());
  (void)K;
  (void)N;
  if (t.shape() != Shape{M, r}) throw ShapeError("ref::lora_forward: T " + shape_str(t.shape()) + " must be [M, r]");
  RowMatrixD T = as_d(lora_dropout_ref(x, key, opt)) * as_d(a).transpose();
  store(t, T, false);
  store(y, opt.scale * (T * as_d(b).transpose()), true);
}

void lora_backward(const Tensor& x, const Tensor& a, const Tensor& b, const Tensor& t, const Tensor& dy, Tensor& dx,
                   Tensor& da, Tensor& db, const LoraDropoutKey& key, const LoraOptions& opt) {
  const auto [M, K, N, r] = check_lora_shapes("ref::lora_backward", x.shape(), a.shape(), b.shape(), &dy.shape());
  if (t.shape() != Shape{M, r} || dx.shape() != x.shape() || da.shape() != a.shape() || db.shape() != b.shape())
    throw ShapeError("ref::lora_backward: T " + shape_str(t.shape()) + ", dX " + shape_str(dx.shape()) + ", dA " +
                     shape_str(da.shape()) + ", dB " + shape_str(db.shape()) + " do not fit X " +
                     shape_str(x.shape()) + ", A " + shape_str(a.shape()) + ", B " + shape_str(b.shape()));
  (void)K;
  (void)N;
  const RowMatrixD DY = as_d(dy), G = DY * as_d(b);  // G = dY * B [M, r]
  store(db, opt.scale * (DY.transpose() * as_d(t)), opt.accumulate_grads);
  store(da, opt.scale * (G.transpose() * as_d(lora_dropout_ref(x, key, opt))), opt.accumulate_grads);
  // dX through the dropout: the same mask and scale applied to s * G * A.
  RowMatrixD dxd = opt.scale * (G * as_d(a));
  Tensor dxd_t = Tensor::view(dxd.data(), x.shape(), DType::F64);
  Tensor masked = lora_dropout_ref(dxd_t, key, opt);
  store(dx, as_matrix_d(masked), opt.accumulate_grads);
}

}  // namespace pocketlora::ref
