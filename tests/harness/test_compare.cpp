// The GPU-vs-reference comparison itself (compare / within): non-finite values must never pass by accident.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "harness/op_harness.h"

namespace pocketlora::test {
namespace {

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

Tensor vec(const std::vector<float>& v) {
  Tensor t = Tensor::zeros({static_cast<std::int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

// Only the relative limit: +Inf vs -Inf gives inf / inf = NaN there, which once compared as "not greater".
Tolerance rel_only() {
  Tolerance t;
  t.max_rel = 1e-3;
  return t;
}

TEST(Compare, FiniteValuesWithinAndBeyondTolerance) {
  EXPECT_TRUE(within(vec({1, 2, 3}), vec({1, 2, 3}), rel_only()));
  EXPECT_TRUE(within(vec({1, 2, 3.002f}), vec({1, 2, 3}), rel_only()));  // 0.002 / 3 = 6.7e-4 <= 1e-3
  EXPECT_FALSE(within(vec({1, 2, 3.01f}), vec({1, 2, 3}), rel_only()));  // 0.01 / 3 = 3.3e-3 > 1e-3
  EXPECT_FALSE(within(vec({1, 2}), vec({1, 2, 3}), rel_only()));         // shape
}

TEST(Compare, DifferingNonFinitePatternsFail) {
  const std::vector<std::pair<float, float>> pairs = {
      {kNan, 1}, {1, kNan}, {kInf, 1}, {1, kInf}, {-kInf, 1}, {1, -kInf}, {kInf, -kInf}, {-kInf, kInf},
      {kNan, kInf}, {kInf, kNan}};
  for (bool allow : {false, true}) {
    for (auto [g, w] : pairs) {
      for (Tolerance tol : {rel_only(), Tolerance{}}) {  // also with no numeric limit at all
        tol.allow_matching_non_finite = allow;
        EXPECT_FALSE(within(vec({0.5f, g}), vec({0.5f, w}), tol)) << "got " << g << " want " << w << " allow " << allow;
      }
      const ErrorStats e = compare(vec({0.5f, g, 2}), vec({0.5f, w, 2}));
      EXPECT_EQ(e.non_finite, 1) << g << " vs " << w;
      EXPECT_EQ(e.first_non_finite_index, 1) << g << " vs " << w;
      EXPECT_EQ(e.matching_non_finite, 0) << g << " vs " << w;
    }
  }
}

TEST(Compare, MatchingNonFinitePassesOnlyWhenTheCaseAllowsIt) {
  for (float v : {kNan, kInf, -kInf}) {
    Tolerance tol = rel_only();
    EXPECT_FALSE(within(vec({1, v, 3}), vec({1, v, 3}), tol)) << v;
    tol.allow_matching_non_finite = true;
    EXPECT_TRUE(within(vec({1, v, 3}), vec({1, v, 3}), tol)) << v;
    // The finite rest is still compared.
    EXPECT_FALSE(within(vec({1, v, 3.01f}), vec({1, v, 3}), tol)) << v;
    const ErrorStats e = compare(vec({1, v, 3}), vec({1, v, 3}));
    EXPECT_EQ(e.non_finite, 0);
    EXPECT_EQ(e.matching_non_finite, 1);
  }
  // NaNs at different positions are two mismatches, allowed or not.
  Tolerance tol = rel_only();
  tol.allow_matching_non_finite = true;
  EXPECT_FALSE(within(vec({kNan, 2}), vec({1, kNan}), tol));
  EXPECT_EQ(compare(vec({kNan, 2}), vec({1, kNan})).non_finite, 2);
}

}  // namespace
}  // namespace pocketlora::test
