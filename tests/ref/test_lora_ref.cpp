// The Philox generator behind the LoRA dropout mask against the published known answer, and the mask's keep
// rate; runs in CPU-only builds too. The GPU comparisons and the backward's finite-difference check are op cases
// in tests/ops/test_lora.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "host/core/error.h"
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
  opt.stream = 3;
  const LoraDropoutKey key{42, 0, 0};
  const Tensor mask = lora_dropout_ref(ones, key, opt);
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
  const Tensor other = lora_dropout_ref(ones, key, opt);
  EXPECT_NE(std::memcmp(other.raw(), mask.raw(), mask.nbytes()), 0);
}

TEST(LoraReference, DropoutKeyStepAndMicroBatchGiveNewMasks) {
  const std::int64_t n = 4096;
  Tensor ones = Tensor::zeros({n});
  for (std::int64_t i = 0; i < n; ++i) ones.data<float>()[i] = 1.0f;
  LoraOptions opt;
  opt.dropout = 0.5f;
  const Tensor base = lora_dropout_ref(ones, {42, 0, 0}, opt);
  auto same = [&](const Tensor& t) { return std::memcmp(t.raw(), base.raw(), base.nbytes()) == 0; };
  EXPECT_TRUE(same(lora_dropout_ref(ones, {42, 0, 0}, opt)));
  EXPECT_FALSE(same(lora_dropout_ref(ones, {42, 1, 0}, opt)));  // next step
  EXPECT_FALSE(same(lora_dropout_ref(ones, {42, 0, 1}, opt)));  // next micro-batch
  EXPECT_FALSE(same(lora_dropout_ref(ones, {43, 0, 0}, opt)));  // another seed
  // The key tensor holds (seed low, seed high, step, micro-batch) and reads back as written.
  const LoraDropoutKey key{0x1234567890abcdefull, 7, 2};
  const Tensor t = lora_key_tensor(key);
  ASSERT_EQ(t.shape(), Shape{4});
  EXPECT_EQ(static_cast<std::uint32_t>(t.data<std::int32_t>()[0]), 0x90abcdefu);
  EXPECT_EQ(static_cast<std::uint32_t>(t.data<std::int32_t>()[1]), 0x12345678u);
  EXPECT_EQ(t.data<std::int32_t>()[2], 7);
  EXPECT_EQ(t.data<std::int32_t>()[3], 2);
  EXPECT_TRUE(lora_key_from_tensor("test", t) == key);
  EXPECT_THROW(lora_key_from_tensor("test", Tensor::zeros({4})), ShapeError);  // f32, not i32
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
