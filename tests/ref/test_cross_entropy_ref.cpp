// The cross-entropy reference (host/ref/cross_entropy.h): forward against hand-computed values, labels outside
// the vocabulary refused; runs in CPU-only builds too. The GPU comparison and the backward's finite-difference
// check are op cases in tests/ops/test_cross_entropy.cpp.
#include <gtest/gtest.h>

#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ref/cross_entropy.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(CrossEntropyReference, ForwardByHand) {
  // Three tokens over a vocabulary of 3, the middle one ignored. By hand (python3 for the digits):
  //   token 0: logits (0, 0, 0), label 2: lse = ln 3 = 1.0986122887, loss = ln 3
  //   token 2: logits (1, 2, 3), label 0: lse = ln(e + e^2 + e^3) = 3.4076059644, loss = lse - 1
  //   mean over the 2 valid tokens = (1.0986122887 + 2.4076059644) / 2 = 1.7531091266
  Tensor logits = Tensor::from_vector({0, 0, 0, 5, -5, 9, 1, 2, 3}, {3, 3});
  Tensor labels = int_tensor({2, kIgnoreIndex, 0});
  Tensor lse = Tensor::zeros({3});
  const CrossEntropyResult r = ref::cross_entropy(logits, labels, lse);
  EXPECT_EQ(r.valid, 2);
  EXPECT_NEAR(r.loss, 1.7531091265562448, 1e-6);
  EXPECT_NEAR(lse.data<float>()[0], 1.0986122886681098, 1e-6);
  EXPECT_NEAR(lse.data<float>()[2], 3.40760596444438, 1e-6);
  // Nothing valid: the loss is 0, not 0/0.
  EXPECT_EQ(ref::cross_entropy(logits, int_tensor({kIgnoreIndex, kIgnoreIndex, kIgnoreIndex}), lse).loss, 0.0);
}

TEST(CrossEntropyReference, RejectsLabelsOutsideTheVocabulary) {
  Tensor lse = Tensor::zeros({4});
  EXPECT_THROW(ref::cross_entropy(random_tensor({4, 7}, 1), int_tensor({7, kIgnoreIndex, 0, 6}), lse), InvalidArgument);
  EXPECT_THROW(ref::cross_entropy(random_tensor({4, 7}, 1), int_tensor({-1, kIgnoreIndex, 0, 6}), lse), InvalidArgument);
}

}  // namespace
