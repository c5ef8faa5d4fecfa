#include "host/ref/optimizer.h"

#include <algorithm>
#include <cmath>

#include "host/core/error.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

GradStats grad_norm(const std::vector<const Tensor*>& grads, float max_norm) {
  GradStats s;
  double total = 0;
  for (std::size_t t = 0; t < grads.size(); ++t) {
    Tensor g = grads[t]->to(DType::F64);
    for (std::int64_t i = 0; i < g.numel(); ++i) {
      const double v = g.data<double>()[i];
      if (!std::isfinite(v)) {
        if (s.first_bad < 0) s.first_bad = static_cast<std::int64_t>(t);
        continue;
      }
      total += v * v;
    }
  }
  s.skip = s.first_bad >= 0;
  s.norm = static_cast<float>(std::sqrt(total));
  s.clip_scale = max_norm > 0 ? static_cast<float>(std::min(1.0, max_norm / (std::sqrt(total) + 1e-6))) : 1.0f;
  return s;
}

namespace {
// AdamW on f32 storage (training): the f64 arithmetic of the general path below element by element, rounded to f32
// once per value as its final copy back rounds it, so the same bits without four f64 copies per tensor (a
// stories260K step updates 70 small tensors; the copies cost more than the update).
void adamw_f32(const OptimizerConfig& cfg, const StepConstants& k, float* p, const float* g0, float* m, float* v,
               std::int64_t n, double cs) {
  const double lr = k.lr, wd = cfg.weight_decay, b1 = cfg.beta1, b2 = cfg.beta2;
  for (std::int64_t i = 0; i < n; ++i) {
    const double g = static_cast<double>(g0[i]) * cs;
    double pi = static_cast<double>(p[i]) * (1.0 - lr * wd);
    double mi = static_cast<double>(m[i]), vi = static_cast<double>(v[i]);
    mi += (1.0 - b1) * (g - mi);
    vi = vi * b2 + (1.0 - b2) * g * g;
    pi -= (lr / k.bias_correction1) * mi / (std::sqrt(vi) / k.bias_correction2_sqrt + cfg.eps);
    p[i] = static_cast<float>(pi);
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
  }
}
}  // namespace

void optimizer_step(const OptimizerConfig& cfg, const StepConstants& k, Tensor& param, const Tensor& grad,
                    OptimizerState& st, const GradStats& stats) {
  if (grad.shape() != param.shape())
    throw ShapeError(std::string("ref::optimizer_step (") + optimizer_name(cfg.kind) + "): grad " +
                     shape_str(grad.shape()) + " vs param " + shape_str(param.shape()));
  if (stats.skip) return;
  if (cfg.kind == OptimizerKind::AdamW && param.dtype() == DType::F32 && grad.dtype() == DType::F32 &&
      st.m.dtype() == DType::F32 && st.v.dtype() == DType::F32 && param.is_contiguous() && grad.is_contiguous() &&
      st.m.is_contiguous() && st.v.is_contiguous())
    return adamw_f32(cfg, k, param.data<float>(), grad.data<float>(), st.m.data<float>(), st.v.data<float>(),
                     param.numel(), stats.clip_scale);
  Tensor pd = param.to(DType::F64), gd = grad.to(DType::F64);
  double* p = pd.data<double>();
  const double* g0 = gd.data<double>();
  const double lr = k.lr, wd = cfg.weight_decay, b1 = cfg.beta1, b2 = cfg.beta2, cs = stats.clip_scale;
  const std::int64_t n = pd.numel();
  switch (cfg.kind) {
    case OptimizerKind::AdamW: {
      Tensor md = st.m.to(DType::F64), vd = st.v.to(DType::F64);
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
      for (std::int64_t i = 0; i < n; ++i) {
        const double g = g0[i] * cs;
        p[i] *= 1.0 - lr * wd;
        double& m = md.data<double>()[i];
        double& v = vd.data<double>()[i];
        m += (1.0 - b1) * (g - m);
        v = v * b2 + (1.0 - b2) * g * g;
        p[i] -= (lr / k.bias_correction1) * m / (std::sqrt(v) / k.bias_correction2_sqrt + cfg.eps);
      }
      st.m.copy_from(md);
      st.v.copy_from(vd);
      break;
    }
    case OptimizerKind::Lion: {
      Tensor md = st.m.to(DType::F64);
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
      for (std::int64_t i = 0; i < n; ++i) {
        const double g = g0[i] * cs;
        double& m = md.data<double>()[i];
        const double c = b1 * m + (1.0 - b1) * g;
        p[i] = p[i] * (1.0 - lr * wd) - lr * ((c > 0) - (c < 0));
        m = b2 * m + (1.0 - b2) * g;
      }
      st.m.copy_from(md);
      break;
    }
    case OptimizerKind::SGD: {
      Tensor md = st.m.to(DType::F64);
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
      for (std::int64_t i = 0; i < n; ++i) {
        double g = g0[i] * cs + wd * p[i];
        if (b1 != 0.0) {
          double& buf = md.data<double>()[i];
          buf = k.first_step != 0 ? g : b1 * buf + (1.0 - cfg.dampening) * g;
          g = cfg.nesterov ? g + b1 * buf : buf;
        }
        p[i] -= lr * g;
      }
      st.m.copy_from(md);
      break;
    }
    case OptimizerKind::Adafactor: {
      if (param.rank() != 2)
        throw ShapeError("ref::optimizer_step (adafactor): only matrices are factored; got " + shape_str(param.shape()));
      const std::int64_t R = param.dim(0), C = param.dim(1);
      const double b2t = k.beta2_t, eps1 = cfg.eps;
      Tensor rd = st.row.to(DType::F64), cd = st.col.to(DType::F64);
      for (std::int64_t r = 0; r < R; ++r) {
        double s = 0;
        for (std::int64_t c = 0; c < C; ++c) s += std::pow(g0[r * C + c] * cs, 2) + eps1;
        rd.data<double>()[r] = b2t * rd.data<double>()[r] + (1.0 - b2t) * s / static_cast<double>(C);
      }
      for (std::int64_t c = 0; c < C; ++c) {
        double s = 0;
        for (std::int64_t r = 0; r < R; ++r) s += std::pow(g0[r * C + c] * cs, 2) + eps1;
        cd.data<double>()[c] = b2t * cd.data<double>()[c] + (1.0 - b2t) * s / static_cast<double>(R);
      }
      double rmean = 0;
      for (std::int64_t r = 0; r < R; ++r) rmean += rd.data<double>()[r];
      rmean /= static_cast<double>(R);
      std::vector<double> u(static_cast<std::size_t>(n));
      double ss = 0;
      for (std::int64_t r = 0; r < R; ++r)
        for (std::int64_t c = 0; c < C; ++c) {
          const double x = g0[r * C + c] * cs / std::sqrt(rd.data<double>()[r] / rmean) / std::sqrt(cd.data<double>()[c]);
          u[static_cast<std::size_t>(r * C + c)] = x;
          ss += x * x;
        }
      const double div = std::max(1.0, std::sqrt(ss / static_cast<double>(n)) / cfg.clip_threshold);
      for (std::int64_t i = 0; i < n; ++i) p[i] = p[i] - lr * wd * p[i] - lr * u[static_cast<std::size_t>(i)] / div;
      st.row.copy_from(rd);
      st.col.copy_from(cd);
      break;
    }
  }
  param.copy_from(pd);
}

}  // namespace pocketlora::ref
