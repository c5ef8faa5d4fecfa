#include "harness/op_harness.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "host/util/splitmix64.h"

namespace pocketlora::test {

std::string ErrorStats::str() const {
  std::ostringstream s;
  s << "max_abs=" << max_abs << " max_rel=" << max_rel << " nmse=" << nmse << " worst_index=" << worst_index
    << " non_finite=" << non_finite;
  if (non_finite) s << " (first at index " << first_non_finite_index << ")";
  if (matching_non_finite) s << " matching_non_finite=" << matching_non_finite;
  return s.str();
}

namespace {
// NaN, +Inf and -Inf are three kinds; any NaN payload or sign counts as the same NaN.
bool same_non_finite(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b;  // both infinite here: equal only with the same sign
}
}  // namespace

ErrorStats compare(const Tensor& got, const Tensor& want, double rel_floor) {
  ErrorStats e;
  Tensor g = got.to(DType::F64), w = want.to(DType::F64);
  const double* gp = g.data<double>();
  const double* wp = w.data<double>();
  double num = 0, den = 0;
  for (std::int64_t i = 0; i < g.numel(); ++i) {
    if (!std::isfinite(gp[i]) || !std::isfinite(wp[i])) {
      if (same_non_finite(gp[i], wp[i])) {
        ++e.matching_non_finite;
      } else if (e.non_finite++ == 0) {
        e.first_non_finite_index = i;
      }
      continue;
    }
    const double d = std::abs(gp[i] - wp[i]);
    const double r = d / std::max(std::abs(wp[i]), rel_floor);
    num += d * d;
    den += wp[i] * wp[i];
    if (d > e.max_abs) {
      e.max_abs = d;
      e.worst_index = i;
    }
    e.max_rel = std::max(e.max_rel, r);
  }
  e.nmse = den > 0 ? num / den : num;
  return e;
}

::testing::AssertionResult within(const Tensor& got, const Tensor& want, const Tolerance& tol) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(got.shape()) << " != " << shape_str(want.shape());
  ErrorStats e = compare(got, want, tol.rel_floor);
  std::ostringstream lim;
  lim << " (limits: max_abs " << tol.max_abs << ", max_rel " << tol.max_rel << ", nmse " << tol.nmse << ")";
  const bool non_finite_ok = e.non_finite == 0 && (e.matching_non_finite == 0 || tol.allow_matching_non_finite);
  const bool ok = non_finite_ok && (tol.max_abs < 0 || e.max_abs <= tol.max_abs) &&
                  (tol.max_rel < 0 || e.max_rel <= tol.max_rel) && (tol.nmse < 0 || e.nmse <= tol.nmse);
  if (!ok) return ::testing::AssertionFailure() << e.str() << lim.str();
  return ::testing::AssertionSuccess() << e.str();
}

Tolerance dot_product_tolerance(std::int64_t terms, double term_scale, DType storage) {
  if (storage != DType::F32 && storage != DType::F16)
    throw std::logic_error(std::string("dot_product_tolerance: no stated tolerance for ") + dtype_name(storage));
  Tolerance t;
  t.rel_floor = std::sqrt(static_cast<double>(terms)) * term_scale;
  t.max_rel = storage == DType::F32 ? 1e-5 : 1e-3;
  t.nmse = storage == DType::F32 ? 1e-10 : 1e-6;
  return t;
}

Tolerance f16_storage_tolerance(double rel_floor) {
  Tolerance t;
  t.max_rel = 1e-3;
  t.nmse = 1e-6;
  t.rel_floor = rel_floor;
  return t;
}

Tensor random_tensor(Shape shape, std::uint64_t seed, float lo, float hi, DType dtype) {
  Tensor t = Tensor::zeros(std::move(shape), DType::F64);
  double* p = t.data<double>();
  std::uint64_t s = seed * 0x2545f4914f6cdd1dull + 1;
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const double u = static_cast<double>(splitmix64(s) >> 11) * 0x1.0p-53;
    p[i] = static_cast<float>(lo + (hi - lo) * u);  // representable in f32 so every dtype starts equal
  }
  return t.to(dtype);
}

double dot(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    throw std::logic_error("dot: shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) + " differ");
  const Tensor x = a.to(DType::F64), y = b.to(DType::F64);
  double s = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) s += x.data<double>()[i] * y.data<double>()[i];
  return s;
}

Tensor int_tensor(const std::vector<std::int32_t>& values) {
  Tensor t = Tensor::zeros({static_cast<std::int64_t>(values.size())}, DType::I32);
  std::copy(values.begin(), values.end(), t.data<std::int32_t>());
  return t;
}

GradCheckResult gradcheck(const std::function<double(const std::vector<Tensor>&)>& loss,
                          const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& analytic,
                          std::vector<Tensor> inputs, double h, std::int64_t max_elems) {
  for (auto& t : inputs)
    if (t.dtype() == DType::F32 || t.dtype() == DType::F16 || t.dtype() == DType::BF16) t = t.to(DType::F64);
  auto grads = analytic(inputs);
  GradCheckResult r;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (k >= grads.size() || !grads[k].defined() || grads[k].numel() == 0) continue;
    if (inputs[k].dtype() != DType::F64)
      throw std::logic_error("gradcheck: input " + std::to_string(k) + " is " + dtype_name(inputs[k].dtype()) +
                             " but has a gradient");
    Tensor g = grads[k].to(DType::F64);
    double* x = inputs[k].data<double>();
    const std::int64_t n = inputs[k].numel();
    const std::int64_t stride = std::max<std::int64_t>(1, n / std::max<std::int64_t>(1, max_elems));
    for (std::int64_t i = 0; i < n; i += stride) {
      const double x0 = x[i];
      x[i] = x0 + h;
      const double lp = loss(inputs);
      x[i] = x0 - h;
      const double lm = loss(inputs);
      x[i] = x0;
      const double fd = (lp - lm) / (2 * h);
      const double an = g.data<double>()[i];
      const double d = std::abs(fd - an);
      const double rel = d / std::max({std::abs(fd), std::abs(an), 1e-6});
      if (d > r.max_abs) {
        r.max_abs = d;
        r.worst = "input " + std::to_string(k) + " element " + std::to_string(i) + ": analytic " +
                  std::to_string(an) + " vs numeric " + std::to_string(fd);
      }
      r.max_rel = std::max(r.max_rel, rel);
    }
  }
  return r;
}

bool bench_mode() {
  const char* v = std::getenv("POCKETLORA_OP_BENCH");
  return v && *v && *v != '0';
}


}  // namespace pocketlora::test
