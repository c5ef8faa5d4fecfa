#if POCKETLORA_HAS_VULKAN  // (not yet ported to op cases: tests/harness/op_case.h)
// Ops whose per-invocation loops grow with a tensor dimension, on devices that cap loop iterations (profile
// loop_limit; lavapipe's gallivm silently leaves loops after 65535 checks): each op splits the work and matches
// the reference, or refuses with DeviceLimitError. Run just past lavapipe's limit on the shared device, and at
// small sizes on a device whose profile override sets loop_limit 100, so the split paths run on any device.
#include <cmath>
#include <fstream>
#include <limits>

#include "common/test_data.h"
#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ops/cross_entropy.h"
#include "host/ops/embedding.h"
#include "host/ops/loop_limit.h"
#include "host/ops/matmul.h"
#include "host/ops/optimizer.h"
#include "host/ops/rmsnorm.h"
#include "host/ref/cross_entropy.h"
#include "host/ref/embedding.h"
#include "host/ref/optimizer.h"
#include "host/ref/rmsnorm.h"
#include "runtime/command.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

constexpr std::int64_t kPastLavapipe = 70000;  // lavapipe's profile loop_limit is 65000

Tensor labels_for(std::int64_t T, std::int64_t V, std::uint64_t seed) {
  Tensor u = random_tensor({T, 2}, seed, 0, 1);
  Tensor l = Tensor::zeros({T}, DType::I32);
  for (std::int64_t t = 0; t < T; ++t)  // a quarter ignored
    l.data<std::int32_t>()[t] = u.data<float>()[2 * t] < 0.25f
                                    ? kIgnoreIndex
                                    : static_cast<std::int32_t>(u.data<float>()[2 * t + 1] * static_cast<float>(V - 1));
  return l;
}

// Chunked cross-entropy (vocabulary chunks of `chunk` columns) vs the f64 reference: lse, loss, count, dlogits.
void expect_cross_entropy(vk::Device& dev, vk::Arena& ar, std::int64_t T, std::int64_t V, std::int64_t chunk) {
  SCOPED_TRACE("cross-entropy T " + std::to_string(T) + ", V " + std::to_string(V) + ", chunk " + std::to_string(chunk));
  Tensor logits = random_tensor({T, V}, 1, -8, 8), labels = labels_for(T, V, 2);
  Tensor lse = Tensor::zeros({T}), dl = Tensor::zeros({T, V});
  const auto want = ref::cross_entropy(logits, labels, lse);
  ref::cross_entropy_backward(logits, labels, lse, dl);
  auto st = ops::make_cross_entropy_state(ar, T);
  auto glabels = ops::upload(dev, ar, labels, "labels");
  std::vector<ops::DeviceTensor> parts, grads;
  for (std::int64_t v0 = 0; v0 < V; v0 += chunk) {
    const std::int64_t c = std::min(chunk, V - v0);
    Tensor part = Tensor::zeros({T, c});
    for (std::int64_t r = 0; r < T; ++r)
      for (std::int64_t j = 0; j < c; ++j) part.data<float>()[r * c + j] = logits.data<float>()[r * V + v0 + j];
    parts.push_back(ops::upload(dev, ar, part, "logits chunk"));
    grads.push_back(ops::allocate(ar, {T, c}, DType::F32, "dlogits chunk"));
  }
  vk::Sequence seq(dev);
  for (std::size_t i = 0; i < parts.size(); ++i)
    ops::cross_entropy_chunk(seq, parts[i], glabels, static_cast<std::int64_t>(i) * chunk, i == 0, st);
  ops::cross_entropy_finalize(seq, glabels, st);
  for (std::size_t i = 0; i < parts.size(); ++i)
    ops::cross_entropy_backward_chunk(seq, parts[i], glabels, static_cast<std::int64_t>(i) * chunk, st, grads[i]);
  seq.submit();
  // The kernels keep f32 running sums of positive terms (V exps per row, `valid` losses), whose rounding grows
  // with the count: up to u * count / 2 relative (u = 2^-24; 2e-3 at 70000, measured 6e-5 on lse there). A
  // dropped or repeated range would be off by a whole fraction of the sum, orders of magnitude more.
  const double u = std::ldexp(1.0, -24), valid = static_cast<double>(std::max<std::int64_t>(1, want.valid));
  Tolerance lt;  // lse = log(sum): its absolute error is the sum's relative error
  lt.max_abs = 1e-6 + 0.5 * u * static_cast<double>(V);
  EXPECT_TRUE(within(ops::download(dev, st.lse), lse, lt));
  Tensor res = ops::download(dev, st.result);
  EXPECT_EQ(res.data<float>()[1], static_cast<float>(want.valid));
  EXPECT_NEAR(res.data<float>()[0], want.loss, std::max(1e-5, 0.5 * u * valid) * std::max(1.0, want.loss));
  // (softmax - onehot) / valid: exp(logit - lse) with |lse| ~ 9 carries ~1 ulp(8) ~ 1e-6 relative error.
  Tolerance gt;
  gt.max_abs = 2e-6 / valid;
  for (std::size_t i = 0; i < grads.size(); ++i) {
    Tensor g = ops::download(dev, grads[i]);
    const std::int64_t c = g.dim(1), v0 = static_cast<std::int64_t>(i) * chunk;
    Tensor w = Tensor::zeros({T, c});
    for (std::int64_t r = 0; r < T; ++r)
      for (std::int64_t j = 0; j < c; ++j) w.data<float>()[r * c + j] = dl.data<float>()[r * V + v0 + j];
    EXPECT_TRUE(within(g, w, gt)) << "dlogits chunk " << i;
  }
}

// Embedding backward over `tokens` ids of a V-row table (row-chunked into `chunk_bytes` bindings, 0 = one).
void expect_embedding_backward(vk::Device& dev, vk::Arena& ar, std::int64_t tokens, std::int64_t V, std::int64_t D,
                               std::uint64_t chunk_bytes) {
  SCOPED_TRACE("embedding_backward tokens " + std::to_string(tokens) + ", V " + std::to_string(V));
  Tensor u = random_tensor({tokens}, 3, 0, 1);
  std::vector<std::int32_t> id(static_cast<std::size_t>(tokens));
  for (std::int64_t t = 0; t < tokens; ++t)
    id[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(u.data<float>()[t] * static_cast<float>(V - 1));
  Tensor ids = int_tensor(id), dout = random_tensor({tokens, D}, 4), dtab0 = random_tensor({V, D}, 5);
  Tensor dtab = dtab0.clone();
  ref::embedding_backward(ids, dout, dtab);
  auto gdt = ops::upload_row_chunked(dev, ar, dtab0, "dtable", chunk_bytes);
  auto gi = ops::upload(dev, ar, ids, "ids"), gdo = ops::upload(dev, ar, dout, "dout");
  vk::Sequence seq(dev);
  ops::embedding_backward(seq, gi, gdo, gdt);
  seq.submit();
  // f32 sums of ~tokens / V values in [-1, 1] per entry (as test_embedding: 1e-6 per add; measured 9.5e-7 for
  // ~7 adds); a dropped or repeated token range would be off by whole values.
  Tolerance acc;
  acc.max_abs = 1e-6 * static_cast<double>(tokens / V + 1);
  EXPECT_TRUE(within(ops::download(dev, gdt), dtab, acc));
}

// RMSNorm backward over `rows` rows; dw accumulated into a non-zero start or overwritten.
void expect_rmsnorm_backward(vk::Device& dev, vk::Arena& ar, std::int64_t rows, std::int64_t dim, bool accumulate) {
  SCOPED_TRACE("rmsnorm_backward rows " + std::to_string(rows) + ", accumulate " + std::to_string(accumulate));
  Tensor x = random_tensor({rows, dim}, 6, -2, 2), w = random_tensor({dim}, 7, 0.5f, 1.5f);
  Tensor dy = random_tensor({rows, dim}, 8), dw0 = random_tensor({dim}, 9);
  Tensor y = Tensor::zeros({rows, dim}), rstd = Tensor::zeros({rows});
  ref::rmsnorm(x, w, y, rstd, 1e-5f);
  Tensor dx = Tensor::zeros({rows, dim}), dw = dw0.clone();
  ref::rmsnorm_backward(x, w, rstd, dy, dx, dw, accumulate);
  auto gx = ops::upload(dev, ar, x, "x"), gw = ops::upload(dev, ar, w, "w"), gr = ops::upload(dev, ar, rstd, "rstd");
  auto gdy = ops::upload(dev, ar, dy, "dy"), gdx = ops::allocate(ar, {rows, dim}, DType::F32, "dx");
  auto gdw = ops::upload(dev, ar, dw0, "dw");
  vk::Sequence seq(dev);
  ops::rmsnorm_backward(seq, gx, gw, gr, gdy, gdx, gdw, accumulate);
  seq.submit();
  // As test_rmsnorm: dw is a sum of `rows` O(1) products, judged relative to sqrt(rows).
  Tolerance t;
  t.max_rel = 1e-5;
  t.rel_floor = std::sqrt(static_cast<double>(rows));
  EXPECT_TRUE(within(ops::download(dev, gdw), dw, t));
}

// Two Adafactor steps (global grad norm with clipping, then the factored update) over `shapes` vs the reference.
void expect_adafactor(vk::Device& dev, vk::Arena& ar, const std::vector<Shape>& shapes) {
  SCOPED_TRACE("adafactor, first shape " + shape_str(shapes[0]));
  OptimizerConfig cfg;
  cfg.kind = OptimizerKind::Adafactor;
  cfg.lr = 1e-2f;
  cfg.eps = 1e-30f;
  cfg.max_grad_norm = 1.0f;
  std::vector<Tensor> params;
  std::vector<OptimizerState> states;
  std::vector<ops::DeviceTensor> P;
  std::vector<ops::DeviceOptimizerState> S;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    params.push_back(random_tensor(shapes[i], 10 + i));
    states.push_back(make_optimizer_state(cfg, shapes[i]));
    P.push_back(ops::upload(dev, ar, params.back(), "param"));
    std::string name = "p";  // built by += : GCC 12 reports a false -Wrestrict on "p" + std::to_string(i)
    name += std::to_string(i);
    S.push_back(ops::make_optimizer_state(dev, ar, cfg, shapes[i], name));
  }
  auto stats = ops::make_grad_stats(ar);
  for (std::int64_t step = 1; step <= 2; ++step) {
    std::vector<Tensor> grads;
    std::vector<ops::DeviceTensor> G;
    std::vector<const Tensor*> gp;
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      grads.push_back(random_tensor(shapes[i], 100 * static_cast<std::uint64_t>(step) + i));
      G.push_back(ops::upload(dev, ar, grads.back(), "grad"));
    }
    for (auto& g : grads) gp.push_back(&g);
    const GradStats want = ref::grad_norm(gp, cfg.max_grad_norm);
    for (std::size_t i = 0; i < shapes.size(); ++i) ref::optimizer_step(cfg, step, params[i], grads[i], states[i], want);
    vk::Sequence seq(dev);
    ops::grad_norm(seq, ar, G, cfg.max_grad_norm, stats);
    for (std::size_t i = 0; i < shapes.size(); ++i) ops::optimizer_step(seq, cfg, step, P[i], G[i], S[i], stats);
    seq.submit();
    const GradStats got = ops::read_grad_stats(dev, stats);
    EXPECT_FALSE(got.skip);
    EXPECT_NEAR(got.norm, want.norm, 1e-5 * want.norm) << "step " << step;
    // As test_optimizers: f32 updates of size ~lr vs f64, absolute 2e-6.
    Tolerance tol;
    tol.max_abs = 2e-6;
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      EXPECT_TRUE(within(ops::download(dev, P[i]), params[i], tol)) << "tensor " << i << " step " << step;
      // The parameters hardly depend on rms(u) (it only divides when above clip_threshold), so check the RMS
      // pass itself: rms of u = g * clip / sqrt(R_r / mean(R) * C_c) from the reference's statistics, in f64.
      // f32 sum of rows * cols positive terms: measured <= 7e-7 relative at 65.6k terms; with the loop cut at
      // lavapipe's cap (no split) rms(u) was 9e-4 off.
      const Tensor R = states[i].row.to(DType::F64), C = states[i].col.to(DType::F64), g = grads[i].to(DType::F64);
      const std::int64_t rows = shapes[i][0], cols = shapes[i][1];
      double row_mean = 0, ss = 0;
      for (std::int64_t r = 0; r < rows; ++r) row_mean += R.data<double>()[r] / static_cast<double>(rows);
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) {
          const double uv = g.data<double>()[r * cols + c] * want.clip_scale /
                            std::sqrt(R.data<double>()[r] / row_mean * C.data<double>()[c]);
          ss += uv * uv;
        }
      const double rms = std::sqrt(ss / static_cast<double>(rows * cols));
      const float got_rms = ops::download(dev, S[i].scratch).data<float>()[1];
      EXPECT_NEAR(got_rms, rms, 2e-5 * rms) << "rms(u), tensor " << i << " step " << step;
    }
  }
}

template <typename F> void expect_device_limit(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected DeviceLimitError mentioning '" << needle << "'";
  } catch (const DeviceLimitError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), ErrorCode::DeviceLimit);
  }
}

TEST(LoopLimitSpans, CoverTheRangeInOrder) {
  using R = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
  EXPECT_EQ(ops::spans(10, 4), (R{{0, 4}, {4, 8}, {8, 10}}));
  EXPECT_EQ(ops::spans(8, 4), (R{{0, 4}, {4, 8}}));
  EXPECT_EQ(ops::spans(3, std::numeric_limits<std::uint64_t>::max()), (R{{0, 3}}));
  EXPECT_EQ(ops::spans(0, 4), (R{{0, 0}}));
}

// Just past lavapipe's limit on the shared device: a Llama-3-sized vocabulary chunk, more tokens / rows than the
// limit, a rank-16 LoRA A over a 4096 hidden size (its RMS pass alone is ~65.6k loop checks).
TEST_F(GpuTest, LoopLimitSplitsPastLavapipesCap) {
  expect_cross_entropy(dev(), arena(), 2, kPastLavapipe, kPastLavapipe);
  expect_cross_entropy(dev(), arena(), kPastLavapipe, 3, 3);
  expect_embedding_backward(dev(), arena(), kPastLavapipe, 5, 2, 0);
  expect_rmsnorm_backward(dev(), arena(), kPastLavapipe, 2, true);
  expect_adafactor(dev(), arena(), {{16, 4100}});
}

TEST_F(GpuTest, LoopLimitRefusesWhatCannotSplit) {
  if (ops::loop_limit(dev()) == 0) GTEST_SKIP() << "profile '" << dev().profile().name() << "' has no loop limit";
  const std::int64_t dim = static_cast<std::int64_t>(ops::loop_limit(dev())) / 2 + 1;  // two loops over dim
  auto x = ops::allocate(arena(), {1, dim}, DType::F32, "x"), w = ops::allocate(arena(), {dim}, DType::F32, "w");
  auto r = ops::allocate(arena(), {1}, DType::F32, "rstd");
  vk::Sequence seq(dev());
  expect_device_limit([&] { ops::rmsnorm(seq, x, w, x, r, 1e-5f); }, "ops::rmsnorm");
}

// A device whose profile caps loops at 100 checks: every split path at small sizes, and the refusals.
TEST(LoopLimitOverride, SmallLimitSplitsOrRefuses) {
  std::string why;
  if (!GpuTest::shared_device(&why)) GTEST_SKIP() << "no Vulkan device: " << why;
  TempDir tmp;
  {
    std::ofstream(tmp / "p.json") << R"({"params": {"loop_limit": 100}})";
  }
  vk::DeviceOptions o;
  o.profile_override = tmp / "p.json";
  vk::Device d(o);
  ASSERT_EQ(ops::loop_limit(d), 100u);
  vk::Arena ar(d, vk::Lifetime::Scratch, "loop limit 100");
  // Stats: 2 loops of <= 49 columns per dispatch; finalize: <= 99 tokens per dispatch.
  expect_cross_entropy(d, ar, 120, 250, 250);
  expect_cross_entropy(d, ar, 120, 250, 97);
  expect_embedding_backward(d, ar, 250, 7, 3, 0);
  expect_embedding_backward(d, ar, 250, 37, 20, 1000);  // 12-row bindings
  expect_rmsnorm_backward(d, ar, 250, 3, true);
  expect_rmsnorm_backward(d, ar, 250, 3, false);
  // Grad norm: 1356 elements in chunks of 99 (not 1024) so the reduce fits; Adafactor RMS one row per pass.
  expect_adafactor(d, ar, {{30, 40}, {7, 13}, {1, 65}});

  vk::Sequence seq(d);
  auto a = ops::allocate(ar, {1, 150}, DType::F32, "a"), c = ops::allocate(ar, {1, 1}, DType::F32, "c");
  expect_device_limit([&] { ops::matmul(seq, a, a, c); }, "K = 150");
  auto wide = ops::allocate(ar, {3, 120}, DType::F32, "wide");  // a row-statistics loop of 121 checks
  OptimizerConfig cfg;
  cfg.kind = OptimizerKind::Adafactor;
  auto st = ops::make_optimizer_state(d, ar, cfg, {3, 120}, "wide");
  auto stats = ops::make_grad_stats(ar);
  expect_device_limit([&] { ops::optimizer_step(seq, cfg, 1, wide, wide, st, stats); }, "[3, 120]");
  auto big = ops::allocate(ar, {100, 100}, DType::F32, "big");  // 10^4 elements: partials of 99 are too many
  expect_device_limit([&] { ops::grad_norm(seq, ar, {big}, 1.0f, stats); }, "ops::grad_norm");
}

}  // namespace
#endif  // POCKETLORA_HAS_VULKAN
