#include "host/ref/lora.h"

#include <cmath>

#include "host/util/error.h"
#include "shaders/common/philox.h"
#include "host/ref/eigen_view.h"

namespace pocketlora {

float lora_scale(float alpha, std::int64_t rank, bool rslora) {
  if (rank <= 0) throw InvalidArgument("lora_scale: rank must be positive, got " + std::to_string(rank));
  return rslora ? alpha / std::sqrt(static_cast<float>(rank)) : alpha / static_cast<float>(rank);
}

std::array<std::int64_t, 4> check_lora_shapes(const char* op, const Shape& x, const Shape& a, const Shape& b,
                                              const Shape* y) {
  const bool ok = x.size() == 2 && a.size() == 2 && b.size() == 2 && a[0] > 0 && a[1] == x[1] && b[1] == a[0] &&
                  (!y || (y->size() == 2 && (*y)[0] == x[0] && (*y)[1] == b[0]));
  if (!ok)
    throw ShapeError(std::string(op) + ": X " + shape_str(x) + ", A " + shape_str(a) + ", B " + shape_str(b) +
                     (y ? ", Y " + shape_str(*y) : std::string()) +
                     " — expected X [M,K], A [r,K] with r >= 1, B [N,r], Y [M,N]");
  return {x[0], x[1], b[0], a[0]};
}

Tensor lora_dropout_ref(const Tensor& x, const LoraOptions& opt) {
  if (opt.dropout < 0.0f || opt.dropout >= 1.0f)
    throw InvalidArgument("LoRA dropout must be in [0, 1), got " + std::to_string(opt.dropout));
  Tensor out = x.clone();
  if (opt.dropout == 0.0f) return out;
  const float keep_scale = 1.0f / (1.0f - opt.dropout);
  const auto lo = static_cast<std::uint32_t>(opt.seed), hi = static_cast<std::uint32_t>(opt.seed >> 32);
  Tensor f = out.to(DType::F64);
  for (std::int64_t i = 0; i < f.numel(); ++i) {
    double& v = f.data<double>()[i];
    if (out.dtype() == DType::F32) v = static_cast<float>(v) * keep_scale;  // the GPU's f32 product
    else v *= static_cast<double>(keep_scale);
    if (!dropout_keep(lo, hi, opt.stream, static_cast<std::uint32_t>(i), opt.dropout)) v = 0.0;
  }
  out.copy_from(f);
  return out;
}

namespace ref {

namespace {
RowMatrixD as_d(const Tensor& t) { return as_matrix_d(t.to(DType::F64)); }
void store(Tensor& dst, const RowMatrixD& v, bool accumulate) {
  RowMatrixD r = accumulate ? RowMatrixD(as_d(dst) + v) : v;
  dst.copy_from(Tensor::view(r.data(), dst.shape(), DType::F64));
}
}  // namespace

void lora_forward(const Tensor& x, const Tensor& a, const Tensor& b, Tensor& y, Tensor& t, const LoraOptions& opt) {
  const auto [M, K, N, r] = check_lora_shapes("ref::lora_forward", x.shape(), a.shape(), b.shape(), &y.shape());
  (void)K;
  (void)N;
  if (t.shape() != Shape{M, r}) throw ShapeError("ref::lora_forward: T " + shape_str(t.shape()) + " must be [M, r]");
  RowMatrixD T = as_d(lora_dropout_ref(x, opt)) * as_d(a).transpose();
  store(t, T, false);
  store(y, opt.scale * (T * as_d(b).transpose()), true);
}

void lora_backward(const Tensor& x, const Tensor& a, const Tensor& b, const Tensor& t, const Tensor& dy, Tensor& dx,
                   Tensor& da, Tensor& db, const LoraOptions& opt) {
  const auto [M, K, N, r] = check_lora_shapes("ref::lora_backward", x.shape(), a.shape(), b.shape(), &dy.shape());
  if (t.shape() != Shape{M, r} || dx.shape() != x.shape() || da.shape() != a.shape() || db.shape() != b.shape())
    throw ShapeError("ref::lora_backward: T " + shape_str(t.shape()) + ", dX " + shape_str(dx.shape()) + ", dA " +
                     shape_str(da.shape()) + ", dB " + shape_str(db.shape()) + " do not fit X " +
                     shape_str(x.shape()) + ", A " + shape_str(a.shape()) + ", B " + shape_str(b.shape()));
  (void)K;
  (void)N;
  const RowMatrixD DY = as_d(dy), G = DY * as_d(b);  // G = dY * B [M, r]
  store(db, opt.scale * (DY.transpose() * as_d(t)), opt.accumulate_grads);
  store(da, opt.scale * (G.transpose() * as_d(lora_dropout_ref(x, opt))), opt.accumulate_grads);
  // dX through the dropout: the same mask and scale applied to s * G * A.
  RowMatrixD dxd = opt.scale * (G * as_d(a));
  Tensor dxd_t = Tensor::view(dxd.data(), x.shape(), DType::F64);
  LoraOptions mask_opt = opt;
  Tensor masked = lora_dropout_ref(dxd_t, mask_opt);
  store(dx, as_matrix_d(masked), opt.accumulate_grads);
}

}  // namespace ref
}  // namespace pocketlora
