// The Backend methods of a training step (host/backend/backend.h: cross_entropy, cross_entropy_backward,
// grad_norm, optimizer_step with backend-held state and step constants): the CPU backend against the host/ref
// functions, the Vulkan backend against the CPU backend, and on both a recorded step (logits = X Wᵀ, loss,
// dW = dlogitsᵀ X, clip, update of W) replayed with new step constants and loss scale matching a step recorded
// afresh each time, a checkpoint round trip of the optimizer state, row-chunked loss equal to one call, and a
// NaN/Inf gradient skipping the step. Small shapes: the whole file runs in a few seconds on lavapipe.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>

#include "common/error_message.h"
#include "common/optimizer_config.h"
#include "harness/op_harness.h"
#include "host/backend/backend.h"
#include "host/core/error.h"
#include "host/ref/cpu_backend.h"
#include "host/ref/cross_entropy.h"
#include "host/ref/optimizer.h"
#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/ops/vulkan_backend.h"
#endif

namespace pocketlora {
namespace {

using test::int_tensor;
using test::random_tensor;
using MakeBackend = std::function<std::unique_ptr<Backend>()>;

constexpr OptimizerKind kKinds[] = {OptimizerKind::AdamW, OptimizerKind::Lion, OptimizerKind::SGD,
                                    OptimizerKind::Adafactor};

std::unique_ptr<Backend> cpu_backend() { return std::make_unique<ref::CpuBackend>(); }

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const Tensor x = a.to(DType::F64), y = b.to(DType::F64);
  double worst = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double d = std::fabs(x.data<double>()[i] - y.data<double>()[i]);
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst;
}

// Labels of T tokens over V classes with every third one masked, so some rows are ignored.
Tensor labels_for(std::int64_t T, std::int64_t V, std::uint64_t seed) {
  Tensor u = random_tensor({T}, seed, 0, 1);
  std::vector<std::int32_t> l;
  for (std::int64_t t = 0; t < T; ++t)
    l.push_back(t % 3 == 1 ? kIgnoreIndex : static_cast<std::int32_t>(u.data<float>()[t] * static_cast<float>(V - 1)));
  return int_tensor(l);
}

std::int64_t count_valid(const Tensor& labels) {
  std::int64_t n = 0;
  for (std::int64_t t = 0; t < labels.numel(); ++t) n += labels.data<std::int32_t>()[t] != kIgnoreIndex;
  return n;
}

// --- the loss ---------------------------------------------------------------------------------------------------

struct LossOut {
  Tensor lse, totals, dlogits;
};

// One program: totals zeroed, the loss over `logits`, its backward with `scale` (in place on a copy of the logits
// when asked).
LossOut run_loss(Backend& be, const Tensor& logits, const Tensor& labels, float scale, bool in_place) {
  const std::int64_t T = logits.dim(0);
  BTensor L = be.upload(logits, Lifetime::Step, "logits"), Y = be.upload(labels, Lifetime::Step, "labels");
  BTensor lse = be.alloc({T}, DType::F32, Lifetime::Step, "lse"),
          tot = be.alloc({2}, DType::F32, Lifetime::Step, "totals");
  BTensor sc = be.upload(Tensor::from_vector({scale}, {1}), Lifetime::Step, "scale");
  BTensor dL = in_place ? L : be.alloc(logits.shape(), DType::F32, Lifetime::Step, "dlogits");
  be.begin();
  be.fill(tot, 0);
  be.cross_entropy(L, Y, lse, tot);
  be.cross_entropy_backward(L, Y, lse, sc, dL);
  be.end();
  be.run();
  return {be.read(lse), be.read(tot), be.read(dL)};
}

TEST(TrainingOpsCpu, CrossEntropyIsTheReferenceWithTotalsAndScaleFromTensors) {
  const Tensor logits = random_tensor({7, 37}, 1, -6, 6), labels = labels_for(7, 37, 2);
  const float scale = 1.0f / static_cast<float>(count_valid(labels));
  Tensor lse = Tensor::zeros({7}), dl = Tensor::zeros({7, 37});
  const CrossEntropyResult want = ref::cross_entropy(logits, labels, lse);
  ref::cross_entropy_backward(logits, labels, lse, dl, scale);
  ASSERT_EQ(want.valid, 5);
  for (bool in_place : {false, true}) {
    ref::CpuBackend be;
    const LossOut got = run_loss(be, logits, labels, scale, in_place);
    EXPECT_TRUE(bit_equal(got.lse, lse));
    EXPECT_TRUE(bit_equal(got.dlogits, dl)) << "in place " << in_place;
    EXPECT_EQ(got.totals.data<float>()[0], static_cast<float>(want.sum));
    EXPECT_EQ(got.totals.data<float>()[1], 5.0f);
  }
  // Masked rows are zero, the others sum to 0 (softmax - onehot) and carry the scale: row 0 is valid.
  ref::CpuBackend be;
  const Tensor d = run_loss(be, logits, labels, 2 * scale, false).dlogits;
  double row0 = 0, row1 = 0;
  for (std::int64_t v = 0; v < 37; ++v) {
    row0 += d.data<float>()[v];
    row1 += std::fabs(d.data<float>()[37 + v]);
    EXPECT_NEAR(d.data<float>()[v], 2 * dl.data<float>()[v], 1e-7);
  }
  EXPECT_NEAR(row0, 0, 1e-6);
  EXPECT_EQ(row1, 0);
}

// The trainer calls the loss on row chunks (view_rows) of a step's logits: three uneven chunks add up to one call.
// Chunk starts are multiples of 64 rows, so every view (logits, labels, lse, dlogits) starts on a 256-byte multiple
// and meets any device's minStorageBufferOffsetAlignment.
void expect_row_chunks_equal_one_call(const MakeBackend& make) {
  const std::int64_t T = 256, V = 40;
  const Tensor logits = random_tensor({T, V}, 3, -8, 8), labels = labels_for(T, V, 4);
  const float scale = 1.0f / static_cast<float>(count_valid(labels));
  auto whole_be = make();
  const LossOut whole = run_loss(*whole_be, logits, labels, scale, false);

  auto be = make();
  BTensor L = be->upload(logits, Lifetime::Step, "logits"), Y = be->upload(labels, Lifetime::Step, "labels");
  BTensor lse = be->alloc({T}, DType::F32, Lifetime::Step, "lse"),
          dL = be->alloc({T, V}, DType::F32, Lifetime::Step, "dlogits");
  BTensor tot = be->alloc({2}, DType::F32, Lifetime::Step, "totals");
  BTensor sc = be->upload(Tensor::from_vector({scale}, {1}), Lifetime::Step, "scale");
  const std::int64_t bounds[] = {0, 64, 192, 256};
  be->begin();
  be->fill(tot, 0);
  for (int c = 0; c < 3; ++c) {
    const std::int64_t r0 = bounds[c], rows = bounds[c + 1] - r0;
    const BTensor Lc = be->view_rows(L, r0, rows), Yc = be->view_rows(Y, r0, rows), lc = be->view_rows(lse, r0, rows);
    be->cross_entropy(Lc, Yc, lc, tot);
    be->cross_entropy_backward(Lc, Yc, lc, sc, be->view_rows(dL, r0, rows));
  }
  be->end();
  be->run();
  // Rows are independent: exactly the rows of the one call.
  EXPECT_TRUE(bit_equal(be->read(lse), whole.lse));
  EXPECT_TRUE(bit_equal(be->read(dL), whole.dlogits));
  const Tensor t = be->read(tot);
  // The loss sum: the same f32 terms, added per token (GPU) or per call (CPU): a few ulp of a sum of ~1000.
  EXPECT_NEAR(t.data<float>()[0], whole.totals.data<float>()[0], 1e-6 * whole.totals.data<float>()[0]);
  EXPECT_EQ(t.data<float>()[1], static_cast<float>(count_valid(labels)));
  EXPECT_EQ(whole.totals.data<float>()[1], static_cast<float>(count_valid(labels)));
}

TEST(TrainingOpsCpu, CrossEntropyOverThreeRowChunksEqualsOneCall) { expect_row_chunks_equal_one_call(cpu_backend); }

TEST(TrainingOpsCpu, CrossEntropyRefusesBadShapes) {
  ref::CpuBackend be;
  BTensor L = be.alloc({4, 9}, DType::F32, Lifetime::Step, "logits"),
          Y = be.alloc({4}, DType::I32, Lifetime::Step, "y");
  BTensor lse = be.alloc({4}, DType::F32, Lifetime::Step, "lse"), tot3 = be.alloc({3}, DType::F32, Lifetime::Step, "t");
  BTensor Y5 = be.alloc({5}, DType::I32, Lifetime::Step, "y5");
  be.begin();
  EXPECT_TRUE(
      test::mentions(test::error_of<ShapeError>([&] { be.cross_entropy(L, Y, lse, tot3); }), {"totals", "[3]", "[2]"}));
  EXPECT_TRUE(
      test::mentions(test::error_of<ShapeError>([&] { be.cross_entropy(L, Y5, lse, tot3); }), {"[4, 9]", "[5]"}));
  EXPECT_TRUE(test::mentions(test::error_of<ShapeError>([&] { be.cross_entropy_backward(L, Y, lse, lse, L); }),
                             {"scale", "[4]"}));
}

// --- the optimizer ----------------------------------------------------------------------------------------------

TEST(TrainingOpsCpu, OptimizerStepIsTheReferenceWithConstantsFromTheTensor) {
  const Shape shapes[] = {{5, 7}, {3, 4}};
  for (OptimizerKind kind : kKinds) {
    OptimizerConfig cfg = test::test_optimizer_config(kind);
    cfg.max_grad_norm = 0.5f;
    ref::CpuBackend be;
    std::vector<Tensor> p, want_p;
    std::vector<OptimizerState> want_st;
    std::vector<BTensor> P, G;
    std::vector<BOptimizerState> S;
    for (int i = 0; i < 2; ++i) {
      p.push_back(random_tensor(shapes[i], 10 + i));
      want_p.push_back(p.back().clone());
      want_st.push_back(make_optimizer_state(cfg, shapes[i]));
      P.push_back(be.upload(p.back(), Lifetime::Weights, "p"));
      G.push_back(be.alloc(shapes[i], DType::F32, Lifetime::Weights, "g"));
      S.push_back(be.alloc_optimizer_state(cfg, shapes[i], "p"));
    }
    BTensor stats = be.alloc_grad_stats(), consts = be.alloc_step_constants();
    be.begin();
    be.grad_norm(G, cfg.max_grad_norm, stats);
    for (int i = 0; i < 2; ++i) be.optimizer_step(cfg, consts, P[i], G[i], S[i], stats);
    be.end();
    for (std::int64_t step = 1; step <= 3; ++step) {
      const StepConstants k = step_constants(cfg, cfg.lr / static_cast<float>(step), step);
      std::vector<Tensor> g;
      for (int i = 0; i < 2; ++i) {
        g.push_back(random_tensor(shapes[i], 100 * static_cast<std::uint64_t>(step) + i));
        be.write(G[i], g.back());
      }
      be.write(consts, step_constants_tensor(k));
      be.run();
      const GradStats want = ref::grad_norm({&g[0], &g[1]}, cfg.max_grad_norm);
      const GradStats got = be.read_grad_stats(stats);
      EXPECT_EQ(got.norm, want.norm);
      EXPECT_EQ(got.clip_scale, want.clip_scale);
      EXPECT_LT(want.clip_scale, 1.0f) << "the case should clip";
      EXPECT_FALSE(got.skip);
      EXPECT_EQ(got.first_bad, -1);
      for (int i = 0; i < 2; ++i) {
        ref::optimizer_step(cfg, k, want_p[i], g[i], want_st[i], want);
        EXPECT_TRUE(bit_equal(be.read(P[i]), want_p[i])) << optimizer_name(kind) << " step " << step << " param " << i;
      }
    }
    for (int i = 0; i < 2; ++i) {
      const auto saved = S[i].tensors();
      const Tensor* want_tensors[] = {&want_st[i].m, &want_st[i].v, &want_st[i].row, &want_st[i].col};
      std::size_t j = 0;
      for (const Tensor* w : want_tensors) {
        if (!w->defined() || w->numel() == 0) continue;
        ASSERT_LT(j, saved.size());
        EXPECT_TRUE(bit_equal(be.read(saved[j].second), *w)) << optimizer_name(kind) << " state " << saved[j].first;
        ++j;
      }
      EXPECT_EQ(j, saved.size());
    }
  }
}

TEST(TrainingOpsCpu, OptimizerStateMembersAndMismatchesAreNamed) {
  ref::CpuBackend be;
  const OptimizerConfig adamw = test::test_optimizer_config(OptimizerKind::AdamW);
  const OptimizerConfig ada = test::test_optimizer_config(OptimizerKind::Adafactor);
  auto names = [](const BOptimizerState& s) {
    std::string n;
    for (const auto& [what, t] : s.tensors()) (n += what) += shape_str(t.shape);
    return n;
  };
  EXPECT_EQ(names(be.alloc_optimizer_state(adamw, {3, 4}, "a")), "m[3, 4]v[3, 4]");
  EXPECT_EQ(names(be.alloc_optimizer_state(test::test_optimizer_config(OptimizerKind::Lion), {3, 4}, "l")), "m[3, 4]");
  EXPECT_EQ(names(be.alloc_optimizer_state(ada, {3, 4}, "f")), "row[3]col[4]");
  EXPECT_THROW(be.alloc_optimizer_state(ada, {12}, "vector"), ShapeError);
  BTensor p = be.alloc({3, 4}, DType::F32, Lifetime::Weights, "p"), stats = be.alloc_grad_stats();
  BTensor consts = be.alloc_step_constants();
  const BOptimizerState wrong = be.alloc_optimizer_state(adamw, {4, 3}, "wrong");
  be.begin();
  EXPECT_TRUE(test::mentions(test::error_of<ShapeError>([&] { be.optimizer_step(adamw, consts, p, p, wrong, stats); }),
                             {"cpu::optimizer_step (adamw)", "'m'", "[4, 3]", "[3, 4]"}));
  const BOptimizerState adamw_state = be.alloc_optimizer_state(adamw, {3, 4}, "a");
  EXPECT_TRUE(test::mentions(
      test::error_of<ShapeError>([&] { be.optimizer_step(ada, consts, p, p, adamw_state, stats); }), {"'m'", "absent"}));
  EXPECT_TRUE(test::mentions(test::error_of<ShapeError>([&] { be.optimizer_step(adamw, stats, p, p, wrong, stats); }),
                             {"step constants", "[4]", "f32 [5]"}));
}

// --- a whole recorded step on one backend ----------------------------------------------------------------------

constexpr std::int64_t kT = 9, kV = 24, kD = 16;

// logits = X Wᵀ, the loss, dlogits, dW = dlogitsᵀ X, the norm of (dW, extra) and one update of W and of `extra`
// (a second parameter whose gradient the host writes), as the trainer records a step.
struct TinyStep {
  Backend& be;
  OptimizerConfig cfg;
  BTensor X, Y, W, extra, extra_grad, logits, lse, totals, scale, dW, stats, consts;
  BOptimizerState sW, sExtra;

  TinyStep(Backend& b, const OptimizerConfig& c) : be(b), cfg(c) {
    X = be.upload(random_tensor({kT, kD}, 20), Lifetime::Weights, "x");
    Y = be.upload(labels_for(kT, kV, 21), Lifetime::Weights, "labels");
    W = be.upload(random_tensor({kV, kD}, 22, -0.5f, 0.5f), Lifetime::Weights, "w");
    extra = be.upload(random_tensor({6, 5}, 23), Lifetime::Weights, "extra");
    extra_grad = be.alloc({6, 5}, DType::F32, Lifetime::Weights, "extra grad");
    logits = be.alloc({kT, kV}, DType::F32, Lifetime::Weights, "logits");
    lse = be.alloc({kT}, DType::F32, Lifetime::Weights, "lse");
    totals = be.alloc({2}, DType::F32, Lifetime::Weights, "totals");
    scale = be.alloc({1}, DType::F32, Lifetime::Weights, "scale");
    dW = be.alloc({kV, kD}, DType::F32, Lifetime::Weights, "dw");
    stats = be.alloc_grad_stats();
    consts = be.alloc_step_constants();
    sW = be.alloc_optimizer_state(cfg, {kV, kD}, "w");
    sExtra = be.alloc_optimizer_state(cfg, {6, 5}, "extra");
  }
  void record() {
    be.begin();
    be.fill(totals, 0);
    be.matmul(X, W, logits, {});
    be.cross_entropy(logits, Y, lse, totals);
    be.cross_entropy_backward(logits, Y, lse, scale, logits);  // in place, as the trainer saves memory
    MatmulOptions tt;
    tt.trans_a = tt.trans_b = true;
    be.matmul(logits, X, dW, tt);
    be.grad_norm({dW, extra_grad}, cfg.max_grad_norm, stats);
    be.optimizer_step(cfg, consts, W, dW, sW, stats);
    be.optimizer_step(cfg, consts, extra, extra_grad, sExtra, stats);
    be.end();
  }
  // The host's per-step writes: this step's lr and constants, the loss scale, the extra gradient.
  void feed(std::int64_t step) {
    const float lr = cfg.lr * (1.0f - 0.2f * static_cast<float>(step - 1));
    be.write(consts, step_constants_tensor(step_constants(cfg, lr, step)));
    const float micro_batches[] = {1, 2, 0.5f};
    be.write(scale, Tensor::from_vector({1.0f / (5.0f * micro_batches[(step - 1) % 3])}, {1}));
    be.write(extra_grad, random_tensor({6, 5}, 300 + static_cast<std::uint64_t>(step), -2, 2));
  }
  struct After {
    Tensor totals, W, extra, stats;
  };
  After read() { return {be.read(totals), be.read(W), be.read(extra), be.read(stats)}; }
};

// Replaying one recording with new constants equals recording each step afresh; the optimizer state read back and
// written into a fresh backend (a checkpoint) continues identically.
void expect_replay_equals_rerecording(const MakeBackend& make) {
  for (OptimizerKind kind : kKinds) {
    SCOPED_TRACE(optimizer_name(kind));
    OptimizerConfig cfg = test::test_optimizer_config(kind);
    cfg.max_grad_norm = 1.0f;
    auto a = make(), b = make();
    TinyStep replay(*a, cfg), fresh(*b, cfg);
    replay.record();
    std::vector<TinyStep::After> first_steps;
    for (std::int64_t step = 1; step <= 3; ++step) {
      replay.feed(step);
      replay.be.run();
      fresh.record();
      fresh.feed(step);
      fresh.be.run();
      TinyStep::After r = replay.read(), f = fresh.read();
      EXPECT_TRUE(bit_equal(r.totals, f.totals)) << "step " << step;
      EXPECT_TRUE(bit_equal(r.W, f.W)) << "step " << step;
      EXPECT_TRUE(bit_equal(r.extra, f.extra)) << "step " << step;
      EXPECT_TRUE(bit_equal(r.stats, f.stats)) << "step " << step;
      EXPECT_EQ(r.totals.data<float>()[1], 6.0f);  // 9 tokens, every third masked
      first_steps.push_back(r);
    }
    // The steps did change W, by different amounts (the constants really vary).
    EXPECT_GT(max_abs_diff(first_steps[0].W, first_steps[1].W), 0);
    EXPECT_GT(max_abs_diff(first_steps[1].W, first_steps[2].W), 0);

    // Checkpoint after step 3: W, extra and the state into a fresh backend; step 4 on both must agree exactly.
    auto c = make();
    TinyStep resumed(*c, cfg);
    c->write(resumed.W, a->read(replay.W));
    c->write(resumed.extra, a->read(replay.extra));
    for (auto [from, to] : {std::pair{&replay.sW, &resumed.sW}, std::pair{&replay.sExtra, &resumed.sExtra}}) {
      const auto src = from->tensors(), dst = to->tensors();
      ASSERT_EQ(src.size(), dst.size());
      for (std::size_t i = 0; i < src.size(); ++i) c->write(dst[i].second, a->read(src[i].second));
    }
    resumed.record();
    resumed.feed(4);
    c->run();
    replay.feed(4);
    a->run();
    EXPECT_TRUE(bit_equal(resumed.read().W, replay.read().W));
    EXPECT_TRUE(bit_equal(resumed.read().extra, replay.read().extra));
  }
}

TEST(TrainingOpsCpu, ReplayedStepEqualsRerecordedStepsAndResumesFromReadState) {
  expect_replay_equals_rerecording(cpu_backend);
}

// Tensor 1 holds a NaN, tensor 2 an Inf: the step is skipped for every tensor and tensor 1 is reported.
void expect_nan_skips_the_step(const MakeBackend& make) {
  for (OptimizerKind kind : kKinds) {
    const OptimizerConfig cfg = test::test_optimizer_config(kind);
    auto be = make();
    const Shape shapes[] = {{4, 5}, {2, 6}, {3, 3}};
    std::vector<BTensor> P, G;
    std::vector<BOptimizerState> S;
    std::vector<Tensor> p0;
    for (int i = 0; i < 3; ++i) {
      Tensor g = random_tensor(shapes[i], 40 + i);
      if (i == 1) g.data<float>()[7] = std::numeric_limits<float>::quiet_NaN();
      if (i == 2) g.data<float>()[0] = std::numeric_limits<float>::infinity();
      p0.push_back(random_tensor(shapes[i], 50 + i));
      P.push_back(be->upload(p0.back(), Lifetime::Weights, "p"));
      G.push_back(be->upload(g, Lifetime::Weights, "g"));
      S.push_back(be->alloc_optimizer_state(cfg, shapes[i], "p"));
    }
    BTensor stats = be->alloc_grad_stats(), consts = be->alloc_step_constants();
    be->write(consts, step_constants_tensor(step_constants(cfg, cfg.lr, 1)));
    be->begin();
    be->grad_norm(G, 1.0f, stats);
    for (int i = 0; i < 3; ++i) be->optimizer_step(cfg, consts, P[i], G[i], S[i], stats);
    be->end();
    be->run();
    const GradStats s = be->read_grad_stats(stats);
    EXPECT_TRUE(s.skip) << optimizer_name(kind);
    EXPECT_EQ(s.first_bad, 1) << optimizer_name(kind);
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(bit_equal(be->read(P[i]), p0[i])) << optimizer_name(kind) << ": a skipped step changed param " << i;
      for (const auto& [what, t] : S[i].tensors()) {
        const Tensor st = be->read(t);
        for (std::int64_t j = 0; j < st.numel(); ++j)
          ASSERT_EQ(st.data<float>()[j], 0.0f) << optimizer_name(kind) << " state " << what << " of param " << i;
      }
    }
  }
}

TEST(TrainingOpsCpu, NanGradientSkipsTheStepAndNamesTheTensor) { expect_nan_skips_the_step(cpu_backend); }

#if POCKETLORA_HAS_VULKAN
class TrainingOpsVulkan : public test::GpuTest {
 protected:
  MakeBackend vulkan() {
    return [this] { return std::make_unique<ops::VulkanBackend>(dev()); };
  }
};

TEST_F(TrainingOpsVulkan, CrossEntropyOverThreeRowChunksEqualsOneCall) { expect_row_chunks_equal_one_call(vulkan()); }
TEST_F(TrainingOpsVulkan, ReplayedStepEqualsRerecordedStepsAndResumesFromReadState) {
  expect_replay_equals_rerecording(vulkan());
}
TEST_F(TrainingOpsVulkan, NanGradientSkipsTheStepAndNamesTheTensor) { expect_nan_skips_the_step(vulkan()); }

// Vulkan vs CPU on the same step, loss and both backwards, for every optimizer over three steps. Tolerances:
// lse and the loss sum as the op cases (f32 online log-sum-exp vs f64: 1e-6 relative of |lse| ~ 8, the sum of 6
// losses 1e-5 relative); logits and dW are f32 GEMMs over K <= 16 (1e-5 absolute at values ~1); parameters as the
// optimizer op cases (2e-6 absolute: f32 updates of size ~lr vs f64), compared after each step, so a drift
// cannot build up unseen.
TEST_F(TrainingOpsVulkan, StepAgreesWithCpuBackend) {
  {
    const Tensor logits = random_tensor({7, 37}, 1, -6, 6), labels = labels_for(7, 37, 2);
    ref::CpuBackend cpu;
    ops::VulkanBackend gpu(dev());
    for (bool in_place : {false, true}) {
      const LossOut want = run_loss(cpu, logits, labels, 0.2f, in_place),
                    got = run_loss(gpu, logits, labels, 0.2f, in_place);
      EXPECT_LT(max_abs_diff(got.lse, want.lse), 1e-6 * 10);
      EXPECT_NEAR(got.totals.data<float>()[0], want.totals.data<float>()[0], 1e-5 * want.totals.data<float>()[0]);
      EXPECT_EQ(got.totals.data<float>()[1], want.totals.data<float>()[1]);
      EXPECT_LT(max_abs_diff(got.dlogits, want.dlogits), 0.2 * 1e-6) << "in place " << in_place;
    }
  }
  for (OptimizerKind kind : kKinds) {
    SCOPED_TRACE(optimizer_name(kind));
    OptimizerConfig cfg = test::test_optimizer_config(kind);
    cfg.max_grad_norm = 1.0f;
    ref::CpuBackend cpu;
    ops::VulkanBackend gpu(dev());
    TinyStep want(cpu, cfg), got(gpu, cfg);
    want.record();
    got.record();
    for (std::int64_t step = 1; step <= 3; ++step) {
      want.feed(step);
      got.feed(step);
      cpu.run();
      gpu.run();
      const TinyStep::After w = want.read(), g = got.read();
      EXPECT_NEAR(g.totals.data<float>()[0], w.totals.data<float>()[0], 1e-5 * w.totals.data<float>()[0]);
      EXPECT_EQ(g.totals.data<float>()[1], w.totals.data<float>()[1]);
      const GradStats ws = grad_stats_from_tensor(w.stats), gs = grad_stats_from_tensor(g.stats);
      EXPECT_NEAR(gs.norm, ws.norm, 1e-5 * ws.norm) << "step " << step;
      EXPECT_NEAR(gs.clip_scale, ws.clip_scale, 1e-5) << "step " << step;
      EXPECT_EQ(gs.skip, ws.skip);
      EXPECT_LT(max_abs_diff(g.W, w.W), 2e-6) << "step " << step;
      EXPECT_LT(max_abs_diff(g.extra, w.extra), 2e-6) << "step " << step;
    }
  }
}
#endif

}  // namespace
}  // namespace pocketlora
