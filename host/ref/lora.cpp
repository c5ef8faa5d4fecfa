#include "host/ref/lora.h"

#include <cmath>

#include "host/core/error.h"
#include "host/ref/blas.h"
#include "host/ref/eigen_view.h"
#include "host/ref/float_kernel.h"
#include "shaders/common/philox.h"

namespace pocketlora::ref {

namespace {
RowMatrixD as_d(const Tensor& t) { return as_matrix_d(t.to(DType::F64)); }
void store(Tensor& dst, const RowMatrixD& v, bool accumulate) {
  RowMatrixD r = accumulate ? RowMatrixD(as_d(dst) + v) : v;
  dst.copy_from(Tensor::view(r.data(), dst.shape(), DType::F64));
}

// The f32 path (every tensor f32: training): f32 GEMMs through host/ref/blas.h on the backend's pool, no f64
// copies. T is rounded to f32 before Y uses it, as the GPU does.
const float* f32(const Tensor& t) { return t.data<float>(); }
float* f32(Tensor& t) { return t.data<float>(); }

// y[n] += scale * T . B[n, :] for one token, R = r known at compile time: the generic loop over r spent as long on
// its own prologue and remainder checks per row as on the R multiply-adds (the CPU decode's adapter cost).
template <int R>
void add_rank_terms(const float* tp, const float* bp, float* yp, std::int64_t N, float scale) {
  for (std::int64_t n = 0; n < N; ++n) {
    const float* brow = bp + n * R;
    float acc = 0.0f;
    for (int j = 0; j < R; ++j) acc += tp[j] * brow[j];
    yp[n] += scale * acc;
  }
}

void lora_forward_f32(const Tensor& x, const Tensor& a, const Tensor& b, Tensor& y, Tensor& t,
                      const LoraDropoutKey& key, const LoraOptions& opt, std::int64_t M, std::int64_t K,
                      std::int64_t N, std::int64_t r) {
  if (M == 1 && opt.dropout == 0.0f) {
    // One token (generation's decode step): two tiny GEMVs whose BLAS call overhead would cost as much as the
    // base linear they adapt; plain loops (vectorised reductions), f32 accumulation as the GEMMs.
    const float *xp = f32(x), *ap = f32(a), *bp = f32(b);
    float *tp = f32(t), *yp = f32(y);
    for (std::int64_t j = 0; j < r; ++j) {
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (std::int64_t k = 0; k < K; ++k) acc += xp[k] * ap[j * K + k];
      tp[j] = acc;
    }
    switch (r) {  // the usual ranks with a compile-time inner loop: unrolled into a few vector ops per row
      case 4: return add_rank_terms<4>(tp, bp, yp, N, opt.scale);
      case 8: return add_rank_terms<8>(tp, bp, yp, N, opt.scale);
      case 16: return add_rank_terms<16>(tp, bp, yp, N, opt.scale);
      case 32: return add_rank_terms<32>(tp, bp, yp, N, opt.scale);
      default:  // any other rank: the vectorised reduction (that pragma on the fixed ranks made them ~25 % slower)
        for (std::int64_t n = 0; n < N; ++n) {
          float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
          for (std::int64_t j = 0; j < r; ++j) acc += tp[j] * bp[n * r + j];
          yp[n] += opt.scale * acc;
        }
    }
    return;
  }
  const Tensor xd = opt.dropout > 0.0f ? lora_dropout_ref(x, key, opt) : Tensor();
  const Tensor& xin = opt.dropout > 0.0f ? xd : x;
  gemm(false, true, M, r, K, 1.0f, f32(xin), K, f32(a), K, 0.0f, f32(t), r);           // T = drop(X) A^T
  gemm(false, true, M, N, r, opt.scale, f32(t), r, f32(b), r, 1.0f, f32(y), N);         // Y += s T B^T
}

void lora_backward_f32(const Tensor& x, const Tensor& a, const Tensor& b, const Tensor& t, const Tensor& dy,
                       Tensor& dx, Tensor& da, Tensor& db, const LoraDropoutKey& key, const LoraOptions& opt,
                       std::int64_t M, std::int64_t K, std::int64_t N, std::int64_t r) {
  const float beta = opt.accumulate_grads ? 1.0f : 0.0f;
  Tensor g = Tensor::zeros({M, r}, DType::F32);
  gemm(false, false, M, r, N, 1.0f, f32(dy), N, f32(b), r, 0.0f, f32(g), r);            // G = dY B
  gemm(true, false, N, r, M, opt.scale, f32(dy), N, f32(t), r, beta, f32(db), r);        // dB (+)= s dY^T T
  if (opt.dropout == 0.0f) {
    gemm(true, false, r, K, M, opt.scale, f32(g), r, f32(x), K, beta, f32(da), K);       // dA (+)= s G^T X
    gemm(false, false, M, K, r, opt.scale, f32(g), r, f32(a), K, beta, f32(dx), K);      // dX (+)= s G A
    return;
  }
  const Tensor xd = lora_dropout_ref(x, key, opt);
  gemm(true, false, r, K, M, opt.scale, f32(g), r, f32(xd), K, beta, f32(da), K);        // dA (+)= s G^T drop(X)
  // dX through the dropout: the same mask and scale applied to s G A.
  Tensor gxa = Tensor::zeros({M, K}, DType::F32);
  gemm(false, false, M, K, r, opt.scale, f32(g), r, f32(a), K, 0.0f, f32(gxa), K);
  const Tensor masked = lora_dropout_ref(gxa, key, opt);
  const float* mp = f32(masked);
  float* dxp = f32(dx);
  for (std::int64_t i = 0; i < M * K; ++i) dxp[i] = opt.accumulate_grads ? dxp[i] + mp[i] : mp[i];
}
}  // namespace

void lora_forward(const Tensor& x, const Tensor& a, const Tensor& b, Tensor& y, Tensor& t, const LoraDropoutKey& key,
                  const LoraOptions& opt) {
  const auto [M, K, N, r] = check_lora_shapes("ref::lora_forward", x.shape(), a.shape(), b.shape(), &y.shape());
  if (t.shape() != Shape{M, r}) throw ShapeError("ref::lora_forward: T " + shape_str(t.shape()) + " must be [M, r]");
  if (all_contiguous_f32({&x, &a, &b, &y, &t})) return lora_forward_f32(x, a, b, y, t, key, opt, M, K, N, r);
  store(t, as_d(lora_dropout_ref(x, key, opt)) * as_d(a).transpose(), false);
  // Y from T as stored (rounded to t's dtype, e.g. f16), as the backward reads it and as the GPU does.
  store(y, opt.scale * (as_d(t) * as_d(b).transpose()), true);
}

void lora_backward(const Tensor& x, const Tensor& a, const Tensor& b, const Tensor& t, const Tensor& dy, Tensor& dx,
                   Tensor& da, Tensor& db, const LoraDropoutKey& key, const LoraOptions& opt) {
  const auto [M, K, N, r] = check_lora_shapes("ref::lora_backward", x.shape(), a.shape(), b.shape(), &dy.shape());
  if (t.shape() != Shape{M, r} || dx.shape() != x.shape() || da.shape() != a.shape() || db.shape() != b.shape())
    throw ShapeError("ref::lora_backward: T " + shape_str(t.shape()) + ", dX " + shape_str(dx.shape()) + ", dA " +
                     shape_str(da.shape()) + ", dB " + shape_str(db.shape()) + " do not fit X " +
                     shape_str(x.shape()) + ", A " + shape_str(a.shape()) + ", B " + shape_str(b.shape()));
  if (all_contiguous_f32({&x, &a, &b, &t, &dy, &dx, &da, &db}))
    return lora_backward_f32(x, a, b, t, dy, dx, da, db, key, opt, M, K, N, r);
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
