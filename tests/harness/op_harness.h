#pragma once
// The measuring tools of the op harness (tests/harness/op_case.h is the case description and the three modes):
// tolerances and the comparison that reports max abs / max rel error and NMSE, deterministic test data, and the
// central finite-difference gradient check in fp64.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "host/core/tensor.h"

namespace pocketlora::test {

struct Tolerance {
  double max_abs = -1;  // < 0: not checked
  double max_rel = -1;  // relative to max(|want|, rel_floor)
  double nmse = -1;     // sum((got-want)^2) / sum(want^2)
  double rel_floor = 1e-3;
  // Non-finite values never pass by accident: a NaN or Inf where the other side differs (a number, NaN vs Inf,
  // +Inf vs -Inf) always fails; the same non-finite value at the same position passes only when a case sets this.
  bool allow_matching_non_finite = false;
};

// Tolerance of a result that is a sum of `terms` products (matmul, NF4 matmul, ...) accumulated in f32 on both
// sides in different orders. f32 storage: each side's rounding error is ~sqrt(terms) * 2^-24 of the products'
// magnitude, so the relative error is taken against max(|want|, sqrt(terms) * term_scale) (term_scale: the
// typical |product|, so that cancellation to ~0 is not a relative blow-up): max_rel 1e-5, NMSE 1e-10. f16
// storage: the inputs are the same f16 values on both sides and the output is rounded to f16 once (2^-11
// relative): max_rel 1e-3, NMSE 1e-6 (DESIGN.md: fp16 paths <= 2e-3 NMSE-style). Other dtypes: logic_error.
Tolerance dot_product_tolerance(std::int64_t terms, double term_scale, DType storage);

// Tolerance of an f16 output computed in f32 from inputs that both sides read as the same f16 values: the one
// rounding to f16 (2^-11 relative) dominates: max_rel 1e-3 against max(|want|, rel_floor), NMSE 1e-6
// (ARCHITECTURE.md §7). rel_floor: the scale of the terms where the output may cancel to ~0.
Tolerance f16_storage_tolerance(double rel_floor);

struct ErrorStats {
  double max_abs = 0, max_rel = 0, nmse = 0;
  std::int64_t worst_index = -1;             // largest |got - want| among positions finite on both sides
  std::int64_t non_finite = 0;               // positions where got and want differ in finiteness or kind
  std::int64_t first_non_finite_index = -1;  // the first of those
  std::int64_t matching_non_finite = 0;      // positions with the same NaN / +Inf / -Inf on both sides
  std::string str() const;
};

ErrorStats compare(const Tensor& got, const Tensor& want, double rel_floor = 1e-3);
// gtest assertion: shapes equal, every error statistic within the case tolerance; prints the statistics.
::testing::AssertionResult within(const Tensor& got, const Tensor& want, const Tolerance& tol);

// Deterministic test data (splitmix64-based; identical on every platform).
Tensor random_tensor(Shape shape, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f, DType dtype = DType::F32);

// sum(a .* b) in f64 (a gradient check's loss: the output weighted by a fixed upstream gradient).
double dot(const Tensor& a, const Tensor& b);

// i32 [n] tensor of the given values (token ids, positions, labels).
Tensor int_tensor(const std::vector<std::int32_t>& values);

// Central finite differences in fp64: for a scalar loss L(inputs), compares analytic dL/dx (from
// `analytic`) with (L(x+h) - L(x-h)) / 2h for every element of every input (or `max_elems` sampled ones).
// Floating inputs are widened to f64 first; integer inputs (ids, positions, labels) are passed as they are and
// need an undefined gradient.
struct GradCheckResult {
  double max_abs = 0, max_rel = 0;
  std::string worst;
};
GradCheckResult gradcheck(const std::function<double(const std::vector<Tensor>&)>& loss,
                          const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& analytic,
                          std::vector<Tensor> inputs, double h = 1e-6, std::int64_t max_elems = 256);

// Perf mode (POCKETLORA_OP_BENCH=1): op cases are also timed (tests/harness/op_case.h); timing uses
// bench::median_ms (bench/bench_util.h), the one median helper of tests and benchmarks.
bool bench_mode();

}  // namespace pocketlora::test
