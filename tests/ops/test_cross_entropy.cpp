// Chunked cross-entropy as op cases (tests/ops/cross_entropy_case.h): GPU vs the double-precision reference with
// ignore-index masking, an all-ignored batch (zeros, not NaN), the reference backward vs finite differences, perf
// rows. Hand-computed forward values: tests/ref/test_cross_entropy_ref.cpp.
#include <array>

#include "ops/cross_entropy_case.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

std::vector<OpCasePtr> cross_entropy_cases() {
  std::vector<OpCasePtr> v;
  // [T, V, chunk]: one chunk, ragged last chunks, a vocabulary just past a power of two. 30% of tokens ignored,
  // gradients scaled by 0.5.
  for (auto [T, V, chunk] : {std::array<std::int64_t, 3>{1, 7, 7}, std::array<std::int64_t, 3>{9, 512, 200},
                             std::array<std::int64_t, 3>{33, 1000, 333}, std::array<std::int64_t, 3>{16, 517, 64}}) {
    CrossEntropyCase::Spec s;
    s.T = T;
    s.V = V;
    s.chunk = chunk;
    s.grad_scale = 0.5f;
    v.push_back(std::make_shared<CrossEntropyCase>("cross_entropy", s));
  }
  {  // every label ignore_index: loss 0 and zero gradients, not 0/0
    CrossEntropyCase::Spec s;
    s.T = 5;
    s.V = 30;
    s.chunk = 16;
    s.ignored_fraction = 1;
    v.push_back(std::make_shared<CrossEntropyCase>("cross_entropy", s));
  }
  {  // given labels, the first and last vocabulary entries among them; logits in [-3, 3]
    CrossEntropyCase::Spec s;
    s.T = 4;
    s.V = 7;
    s.chunk = 3;
    s.labels = std::vector<std::int32_t>{3, kIgnoreIndex, 0, 6};
    s.logit_range = 3;
    s.logit_seed = 4;
    v.push_back(std::make_shared<CrossEntropyCase>("cross_entropy", s));
  }
  return v;
}

POCKETLORA_OP_CASES(CrossEntropy, cross_entropy_cases)

}  // namespace
