// The Philox generator behind the LoRA dropout mask against the published known answer, and the mask's keep
// rate; runs in CPU-only builds too. The GPU comparisons and the backward's finite-difference check are op cases
// in tests/ops/test_lora.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "harness/op_harness.h"
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

// The f32 path (OpenBLAS GEMMs; what the CPU backend trains with) against the f64 Eigen path on the same values,
// with and without dropout, accumulating into non-zero gradients, within the op cases' f32 tolerance.
TEST(LoraReference, F32PathMatchesF64Path) {
  const std::int64_t M = 33, K = 70, N = 40, r = 8;
  for (const float dropout : {0.0f, 0.1f}) {
    LoraOptions opt;
    opt.scale = 2.0f;
    opt.dropout = dropout;
    opt.accumulate_grads = true;
    const LoraDropoutKey key{7, 3, 1};
    const Tensor x = test::random_tensor({M, K}, 1), a = test::random_tensor({r, K}, 2, -0.2f, 0.2f),
                 b = test::random_tensor({N, r}, 3, -0.2f, 0.2f), y0 = test::random_tensor({M, N}, 4),
                 dy = test::random_tensor({M, N}, 5), dx0 = test::random_tensor({M, K}, 6),
                 da0 = test::random_tensor({r, K}, 7), db0 = test::random_tensor({N, r}, 8);
    auto run = [&](DType dt) {
      std::vector<Tensor> o{Tensor::zeros({M, r}, dt), y0.to(dt), db0.to(dt), da0.to(dt), dx0.to(dt)};
      const Tensor xd = x.to(dt), ad = a.to(dt), bd = b.to(dt);
      ref::lora_forward(xd, ad, bd, o[1], o[0], key, opt);
      ref::lora_backward(xd, ad, bd, o[0], dy.to(dt), o[4], o[3], o[2], key, opt);
      for (auto& t : o) t = t.to(DType::F32);
      return o;
    };
    const auto f32 = run(DType::F32), f64 = run(DType::F64);
    const char* names[5] = {"T", "Y", "dB", "dA", "dX"};
    const std::int64_t len[5] = {K, r, M, M, N};
    for (int i = 0; i < 5; ++i)
      EXPECT_TRUE(test::within(f32[i], f64[i], test::dot_product_tolerance(len[i], 0.1, DType::F32)))
          << names[i] << " dropout " << dropout;
  }
}

}  // namespace
