#if POCKETLORA_HAS_VULKAN  // (not yet ported to op cases: tests/harness/op_case.h)
// Chunked cross-entropy on the GPU vs a double-precision reference; ignore-index masking; all-ignored batch.
#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ops/cross_entropy.h"
#include "host/ref/cross_entropy.h"
#include "runtime/command.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

Tensor labels_tensor(std::int64_t T, std::int64_t V, std::uint64_t seed, double ignored_fraction) {
  Tensor u = random_tensor({T, 2}, seed, 0, 1);
  Tensor l = Tensor::zeros({T}, DType::I32);
  for (std::int64_t t = 0; t < T; ++t)
    l.data<std::int32_t>()[t] = u.data<float>()[2 * t] < ignored_fraction
                                    ? kIgnoreIndex
                                    : static_cast<std::int32_t>(u.data<float>()[2 * t + 1] * static_cast<float>(V - 1));
  return l;
}

struct CeRun {
  Tensor lse, dlogits;
  float loss, valid;
};

// Runs the chunked GPU path with `chunk` columns per chunk (logits sliced on the host into chunk buffers).
CeRun run_gpu(GpuTest& t, vk::Device& dev, vk::Arena& arena, const Tensor& logits, const Tensor& labels,
              std::int64_t chunk, float grad_scale) {
  const std::int64_t T = logits.dim(0), V = logits.dim(1);
  auto st = ops::make_cross_entropy_state(arena, T);
  auto glabels = ops::upload(dev, arena, labels, "labels");
  std::vector<ops::DeviceTensor> chunks, grads;
  for (std::int64_t v0 = 0; v0 < V; v0 += chunk) {
    const std::int64_t c = std::min(chunk, V - v0);
    Tensor part = Tensor::zeros({T, c});
    for (std::int64_t r = 0; r < T; ++r)
      for (std::int64_t j = 0; j < c; ++j) part.data<float>()[r * c + j] = logits.data<float>()[r * V + v0 + j];
    chunks.push_back(ops::upload(dev, arena, part, "logits chunk"));
    grads.push_back(ops::allocate(arena, {T, c}, DType::F32, "dlogits chunk"));
  }
  vk::Sequence seq(dev);
  for (std::size_t i = 0; i < chunks.size(); ++i)
    ops::cross_entropy_chunk(seq, chunks[i], glabels, static_cast<std::int64_t>(i) * chunk, i == 0, st);
  ops::cross_entropy_finalize(seq, glabels, st);
  for (std::size_t i = 0; i < chunks.size(); ++i)
    ops::cross_entropy_backward_chunk(seq, chunks[i], glabels, static_cast<std::int64_t>(i) * chunk, st, grads[i],
                                      grad_scale);
  seq.submit();
  (void)t;
  CeRun r;
  r.lse = ops::download(dev, st.lse);
  Tensor res = ops::download(dev, st.result);
  r.loss = res.data<float>()[0];
  r.valid = res.data<float>()[1];
  r.dlogits = Tensor::zeros({T, V});
  for (std::size_t i = 0; i < grads.size(); ++i) {
    Tensor g = ops::download(dev, grads[i]);
    const std::int64_t c = g.dim(1), v0 = static_cast<std::int64_t>(i) * chunk;
    for (std::int64_t row = 0; row < T; ++row)
      for (std::int64_t j = 0; j < c; ++j) r.dlogits.data<float>()[row * V + v0 + j] = g.data<float>()[row * c + j];
  }
  return r;
}

class CrossEntropy : public GpuTest, public ::testing::WithParamInterface<std::array<std::int64_t, 3>> {};

TEST_P(CrossEntropy, ChunkedGpuMatchesReference) {
  const auto [T, V, chunk] = GetParam();
  Tensor logits = random_tensor({T, V}, 1, -8, 8), labels = labels_tensor(T, V, 2, 0.3);
  Tensor lse = Tensor::zeros({T}), dl = Tensor::zeros({T, V});
  auto want = ref::cross_entropy(logits, labels, lse);
  ref::cross_entropy_backward(logits, labels, lse, dl, 0.5f);
  auto got = run_gpu(*this, dev(), arena(), logits, labels, chunk, 0.5f);
  // lse: f32 online log-sum-exp over V terms vs f64: relative 1e-6 of |lse| (values ~ 8 + log V).
  Tolerance lt;
  lt.max_rel = 1e-6;
  lt.rel_floor = 1.0;
  EXPECT_TRUE(within(got.lse, lse, lt));
  EXPECT_EQ(got.valid, static_cast<float>(want.valid));
  EXPECT_NEAR(got.loss, want.loss, 1e-5 * std::max(1.0, want.loss));
  // Gradients are probabilities / n_valid: absolute 1e-7 / n_valid-scale; judge relative to 1 / valid.
  Tolerance gt;
  gt.max_abs = 1e-6 / static_cast<double>(std::max<std::int64_t>(1, want.valid));
  EXPECT_TRUE(within(got.dlogits, dl, gt));
}

INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropy,
                         ::testing::Values(std::array<std::int64_t, 3>{1, 7, 7}, std::array<std::int64_t, 3>{9, 512, 200},
                                           std::array<std::int64_t, 3>{33, 1000, 333},
                                           std::array<std::int64_t, 3>{16, 517, 64}));

TEST_F(GpuTest, CrossEntropyAllIgnoredGivesZeroNotNaN) {
  Tensor logits = random_tensor({5, 30}, 3), labels = Tensor::zeros({5}, DType::I32);
  for (int i = 0; i < 5; ++i) labels.data<std::int32_t>()[i] = kIgnoreIndex;
  auto got = run_gpu(*this, dev(), arena(), logits, labels, 16, 1.0f);
  EXPECT_EQ(got.loss, 0.0f);
  EXPECT_EQ(got.valid, 0.0f);
  for (std::int64_t i = 0; i < got.dlogits.numel(); ++i) ASSERT_EQ(got.dlogits.data<float>()[i], 0.0f);
}

}  // namespace
#endif  // POCKETLORA_HAS_VULKAN
