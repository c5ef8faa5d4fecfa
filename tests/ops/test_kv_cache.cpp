// Attention over a KV cache (host/core/op/kv_cache.h). The CPU reference against ref::attention (the training
// attention, an independent f64 implementation): writing a sequence's k/v at positions 0..T-1 and attending by
// position is causal attention. The Vulkan kernels against the reference on scattered positions, GQA heads and a
// cache larger than the sequence. Both through the Backend interface, as the decoder calls them.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/error_message.h"
#include "host/core/error.h"
#include "host/ref/attention.h"
#include "host/ref/cpu_backend.h"
#include "host/ref/kv_cache.h"
#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/ops/loop_limit.h"
#include "host/ops/vulkan_backend.h"
#endif

namespace pocketlora {
namespace {

Tensor random_tensor(Shape s, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  Tensor t = Tensor::zeros(std::move(s));
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = n(rng);
  return t;
}

Tensor positions_tensor(const std::vector<std::int32_t>& p) {
  Tensor t = Tensor::zeros({static_cast<std::int64_t>(p.size())}, DType::I32);
  std::copy(p.begin(), p.end(), t.data<std::int32_t>());
  return t;
}

double max_rel_diff(const Tensor& got, const Tensor& want) {
  double worst = 0, scale = 1e-30;
  for (std::int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(double(want.data<float>()[i])));
  for (std::int64_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst, std::fabs(double(got.data<float>()[i]) - want.data<float>()[i]) / scale);
  return std::isnan(worst) ? INFINITY : worst;
}

// Causal attention is attention by position over a cache holding the sequence at rows 0..T-1.
TEST(KvCacheRef, PositionsZeroToTMatchCausalAttention) {
  const std::int64_t T = 7, H = 4, KVH = 2, D = 8, capacity = 10;
  const Tensor q = random_tensor({T, H, D}, 1), k = random_tensor({T, KVH, D}, 2), v = random_tensor({T, KVH, D}, 3);
  std::vector<std::int32_t> p(T);
  for (std::int32_t i = 0; i < T; ++i) p[static_cast<std::size_t>(i)] = i;
  Tensor kc = Tensor::zeros({capacity, KVH, D}), vc = Tensor::zeros({capacity, KVH, D});
  ref::kv_cache_write(k, v, positions_tensor(p), kc, vc);
  Tensor got = Tensor::zeros({T, H, D}), want = Tensor::zeros({T, H, D}), lse = Tensor::zeros({T, H});
  ref::kv_cache_attention(q, kc, vc, positions_tensor(p), got);
  ref::attention(q, k, v, nullptr, want, lse);
  // Both sum in f64 and round once to f32.
  EXPECT_LT(max_rel_diff(got, want), 1e-6);
}

// One query at position p sees exactly the cache rows 0..p: the row p of causal attention over those rows.
TEST(KvCacheRef, SingleQueryAtAPositionSeesRowsUpToIt) {
  const std::int64_t T = 9, H = 2, KVH = 1, D = 4;
  const Tensor q = random_tensor({T, H, D}, 4), k = random_tensor({T, KVH, D}, 5), v = random_tensor({T, KVH, D}, 6);
  Tensor full = Tensor::zeros({T, H, D}), lse = Tensor::zeros({T, H});
  ref::attention(q, k, v, nullptr, full, lse);
  std::vector<std::int32_t> all(T);
  for (std::int32_t i = 0; i < T; ++i) all[static_cast<std::size_t>(i)] = i;
  Tensor kc = Tensor::zeros({T, KVH, D}), vc = Tensor::zeros({T, KVH, D});
  ref::kv_cache_write(k, v, positions_tensor(all), kc, vc);
  const std::int64_t p = 5;
  Tensor q1 = Tensor::zeros({1, H, D}), out = Tensor::zeros({1, H, D});
  std::copy_n(q.data<float>() + p * H * D, H * D, q1.data<float>());
  ref::kv_cache_attention(q1, kc, vc, positions_tensor({static_cast<std::int32_t>(p)}), out);
  for (std::int64_t i = 0; i < H * D; ++i) EXPECT_NEAR(out.data<float>()[i], full.data<float>()[p * H * D + i], 1e-6);
}

TEST(KvCacheRef, ShapeErrorsNameEveryShape) {
  using test::error_of;
  using test::mentions;
  EXPECT_TRUE(mentions(error_of<ShapeError>([] {
                         check_kv_cache_attention_shapes("op", {2, 4, 8}, {10, 3, 8}, {10, 3, 8}, {2}, {2, 4, 8});
                       }),
                       {"op", "n_heads is not a multiple", "[2, 4, 8]", "[10, 3, 8]"}));
  EXPECT_THROW(check_kv_cache_write_shapes("op", {2, 2, 8}, {2, 2, 8}, {3}, {10, 2, 8}, {10, 2, 8}), ShapeError);
  EXPECT_THROW(check_kv_cache_write_shapes("op", {2, 2, 8}, {2, 2, 8}, {2}, {10, 2, 4}, {10, 2, 4}), ShapeError);
}

#if POCKETLORA_HAS_VULKAN
using VulkanKvCache = test::GpuTest;

// Runs write + attention on `be` in one program, twice with different positions (the program is replayed, as a
// decode step is), and returns the outputs and the caches after each run.
std::vector<Tensor> run_cached(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t capacity,
                               const std::vector<std::vector<std::int32_t>>& position_runs) {
  const BTensor bq = be.upload(q, Lifetime::Step, "q"), bk = be.upload(k, Lifetime::Step, "k"),
                bv = be.upload(v, Lifetime::Step, "v");
  const Shape cs{capacity, k.dim(1), k.dim(2)};
  const BTensor kc = be.upload(random_tensor(cs, 40), Lifetime::Step, "k cache");
  const BTensor vc = be.upload(random_tensor(cs, 41), Lifetime::Step, "v cache");
  const BTensor pos = be.alloc({q.dim(0)}, DType::I32, Lifetime::Step, "positions");
  const BTensor out = be.alloc(q.shape(), DType::F32, Lifetime::Step, "out");
  be.begin();
  be.kv_cache_write(bk, bv, pos, kc, vc);
  be.kv_cache_attention(bq, kc, vc, pos, out, 0.0f);
  const Backend::Program prog = be.end();
  std::vector<Tensor> results;
  for (const auto& p : position_runs) {
    be.write(pos, positions_tensor(p));
    be.run(prog);
    results.push_back(be.read(out));
    results.push_back(be.read(kc));
  }
  be.free_step();
  return results;
}

TEST_F(VulkanKvCache, MatchesReferenceOnScatteredPositions) {
  const std::int64_t T = 3, H = 4, KVH = 2, D = 8, capacity = 12;
  const Tensor q = random_tensor({T, H, D}, 7), k = random_tensor({T, KVH, D}, 8), v = random_tensor({T, KVH, D}, 9);
  const std::vector<std::vector<std::int32_t>> runs = {{0, 5, 9}, {11, 2, 3}};
  ref::CpuBackend cpu;
  ops::VulkanBackend gpu(dev());
  const auto want = run_cached(cpu, q, k, v, capacity, runs);
  const auto got = run_cached(gpu, q, k, v, capacity, runs);
  for (std::size_t i = 0; i < want.size(); i += 2) {
    // Output: f32 online softmax against the f64 reference, 1e-5 relative to the largest value.
    EXPECT_LT(max_rel_diff(got[i], want[i]), 1e-5) << "run " << i / 2;
    // Cache: copies, exact.
    EXPECT_EQ(max_rel_diff(got[i + 1], want[i + 1]), 0.0) << "run " << i / 2;
  }
}

TEST_F(VulkanKvCache, CacheBeyondTheLoopBudgetIsRefused) {
  if (ops::loop_limit(dev()) == 0) GTEST_SKIP() << "this device has no loop limit";
  ops::VulkanBackend be(dev());
  const BTensor q = be.alloc({1, 32, 64}, DType::F32, Lifetime::Step, "q");
  const BTensor kc = be.alloc({4096, 4, 64}, DType::F32, Lifetime::Step, "k cache");
  const BTensor pos = be.alloc({1}, DType::I32, Lifetime::Step, "positions");
  be.begin();
  const auto msg = test::error_of<DeviceLimitError>([&] { be.kv_cache_attention(q, kc, kc, pos, q, 0.0f); });
  EXPECT_TRUE(test::mentions(msg, {"kv_cache_attention", "4096"}));
  be.end();
  be.free_step();
}
#endif

}  // namespace
}  // namespace pocketlora
