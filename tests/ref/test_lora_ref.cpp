// The Philox generator behind the LoRA dropout mask against the published known answer, and the mask's keep
// rate; runs in CPU-only builds too. The GPU comparisons and the backward's finite-difference check are op cases
// in tests/ops/test_lora.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "host/ref/lora.h"
#include "shaders/common/philox.h"

using namespace pocketlora;

namespace {

TEST(LoraReference, DropoutKeepsOneMinusPAndDependsOnTheStream) {
  // The Philox mask (the GPU's is the same bit for bit: op case lora_dropout/* in tests/ops/test_lora.cpp) keeps
  // each element with probability 1 - p and scales the kept ones by 1 / (1 - p).
  const std::int64_t n = 50000;
  Tensor ones = Tensor::zeros({n});
  for (std::int64_t i = 0; i < n; ++i) ones.data<float>()[i] = 1.0f;
  LoraOptions opt;
  opt.dropout = 0.25f;
  opt.seed = 42;
  opt.stream = 3;
  const Tensor mask = lora_dropout_ref(ones, opt);
  std::int64_t kept = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = mask.data<float>()[i];
    ASSERT_TRUE(v == 0.0f || std::abs(v - 1.0 / 0.75) < 1e-6) << "element " << i << " is " << v;
    kept += v != 0.0f;
  }
  // Binomial(n, 0.75): standard deviation sqrt(n * 0.75 * 0.25) ~ 97; allow 5 sigma.
  EXPECT_NEAR(static_cast<double>(kept), 0.75 * n, 5 * std::sqrt(n * 0.75 * 0.25));
  // A different stream gives a different mask.
  opt.stream = 4;
  const Tensor other = lora_dropout_ref(ones, opt);
  EXPECT_NE(std::memcmp(other.raw(), mask.raw(), mask.nbytes()), 0);
}

TEST(Philox, KnownAnswer) {
  // Random123's published known-answer vector for philox4x32_10: counter 0, key 0.
  auto r = philox4x32_10({0u, 0u, 0u, 0u}, 0u, 0u);
  EXPECT_EQ(r[0], 0x6627e8d5u);
  EXPECT_EQ(r[1], 0xe169c58du);
  EXPECT_EQ(r[2], 0xbc57ac4cu);
  EXPECT_EQ(r[3], 0x9b00dbd8u);
}

}  // namespace
