// Whole-model gradient check of the hand-written Llama + LoRA backward (host/train/llama_lora_step.cpp): a tiny
// random Llama (GQA 4 heads / 2 kv heads, untied head, 2 layers, LoRA on all seven linears with nonzero B) runs on
// the CPU backend with f64 tensors end to end; the loss is mean cross-entropy computed here on the host in f64
// from the read logits; central differences of that loss must agree with the analytic dA and dB of every adapted
// module.
//
// Tolerance: 1e-6 relative. Everything is f64 (the host/ref kernels compute in f64 and keep f64 tensors f64), so
// with step h = 1e-5 the central difference's truncation error is ~h^2 * |L'''| ~ 1e-10 and its rounding error
// ~1e-16 * |L| / h ~ 1e-11, both far below 1e-6 of gradients of size 1e-3..1e-1; a missing or wrong backward
// term shows up as a relative error of 1e-2..1 (checked by hand: rotating dk forward instead of back, or letting
// v's dX overwrite q's and k's instead of adding to them, fails every module of layer 0; measured worst error of
// the correct backward: 7e-8).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/error_message.h"
#include "host/core/error.h"
#include "host/ref/cpu_backend.h"
#include "host/train/llama_lora_step.h"
#include "host/util/splitmix64.h"
#include "train/host_loss.h"

namespace pocketlora {
namespace {

constexpr std::int64_t kBatch = 2, kSeq = 5;

double uniform(std::uint64_t& s, double lo, double hi) {
  return lo + (hi - lo) * static_cast<double>(splitmix64(s) >> 11) * 0x1.0p-53;
}

Tensor random_f64(const Shape& shape, std::uint64_t& s, double lo, double hi) {
  Tensor t = Tensor::zeros(shape, DType::F64);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = uniform(s, lo, hi);
  return t;
}

LlamaModel tiny_llama(RopeLayout layout, std::uint64_t seed) {
  LlamaModel m;
  auto& c = m.config;
  c.dim = 16;
  c.hidden_dim = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 4;
  c.vocab_size = 11;
  c.max_seq_len = kSeq;
  m.rope_layout = layout;
  std::uint64_t s = seed;
  auto linear = [&](std::int64_t out, std::int64_t in) {
    const double b = 1.5 / std::sqrt(static_cast<double>(in));
    return BaseLinear{random_f64({out, in}, s, -b, b), std::nullopt};
  };
  m.tok_embeddings = random_f64({c.vocab_size, c.dim}, s, -1, 1);
  m.norm = random_f64({c.dim}, s, 0.8, 1.2);
  m.output = random_f64({c.vocab_size, c.dim}, s, -0.5, 0.5);  // untied
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    LlamaLayer L;
    L.attn_norm = random_f64({c.dim}, s, 0.8, 1.2);
    L.ffn_norm = random_f64({c.dim}, s, 0.8, 1.2);
    L.wq = linear(c.n_heads * c.head_dim, c.dim);
    L.wk = linear(c.kv_dim(), c.dim);
    L.wv = linear(c.kv_dim(), c.dim);
    L.wo = linear(c.dim, c.n_heads * c.head_dim);
    L.w_gate = linear(c.hidden_dim, c.dim);
    L.w_up = linear(c.hidden_dim, c.dim);
    L.w_down = linear(c.dim, c.hidden_dim);
    m.layers.push_back(std::move(L));
  }
  return m;
}

// Relative error, measured against at least 1e-5: a directional derivative near 0 is compared absolutely, where
// the central difference's rounding (~1e-11) would otherwise dominate.
double rel_err(double a, double b) { return std::fabs(a - b) / std::max({std::fabs(a), std::fabs(b), 1e-5}); }

// The tiny model's adapter with f64 A and a random nonzero B (so that dA is not trivially 0).
LoraAdapter tiny_adapter(const LlamaModel& model, std::uint64_t& s) {
  LoraConfig lc;
  lc.rank = 3;
  lc.alpha = 5.0f;
  LoraAdapter ad = init_lora_adapter(model.config, model.rope_layout, lc, 11);
  for (auto& mod : ad.modules) {
    mod.a = mod.a.to(DType::F64);
    mod.b = random_f64(mod.b.shape(), s, -0.4, 0.4);
  }
  return ad;
}

// Random ids for the step; returns their next-token labels.
std::vector<std::int32_t> write_random_batch(Backend& be, const LlamaLoraStep& step, std::uint64_t& s) {
  std::vector<std::int32_t> ids(kBatch * kSeq);
  for (auto& id : ids) id = static_cast<std::int32_t>(splitmix64(s) % 11);
  Tensor ids_t = Tensor::zeros({kBatch * kSeq}, DType::I32);
  std::copy(ids.begin(), ids.end(), ids_t.data<std::int32_t>());
  be.write(step.ids(), ids_t);
  return test::next_token_labels(ids, kSeq);
}

// Forward, host loss, backward from dlogits; returns the loss (the gradients are left in the backend).
double forward_backward(Backend& be, LlamaLoraStep& step, const std::vector<std::int32_t>& labels) {
  be.begin();
  step.record_forward();
  be.end();
  be.run();
  Tensor dlogits;
  const double loss = test::host_cross_entropy(be.read(step.logits()), labels, &dlogits);
  be.write(step.dlogits(), dlogits);
  be.begin();
  step.record_backward();
  be.end();
  be.run();
  return loss;
}

// packed: each sequence holds two documents (segment ids, positions restarting at each document).
void gradient_check(RopeLayout layout, bool packed, bool checkpointing = false) {
  const LlamaModel model = tiny_llama(layout, 7);
  std::uint64_t s = 99;
  const LoraAdapter ad = tiny_adapter(model, s);

  ref::CpuBackend be;
  const BackendLlama bm = upload_llama(be, model);
  ASSERT_EQ(bm.tok_embeddings.dtype, DType::F64);
  const BackendLora bl = upload_lora(be, bm, ad);
  LoraStepOptions so;
  so.batch = kBatch;
  so.seq_len = kSeq;
  so.segments = packed;
  so.checkpointing = checkpointing;
  LlamaLoraStep step(be, bm, bl, so);
  const std::vector<std::int32_t> labels = write_random_batch(be, step, s);
  if (packed) {
    const std::vector<std::int32_t> seg = {0, 0, 1, 1, 1, 0, 0, 0, 1, 1}, pos = {0, 1, 0, 1, 2, 0, 1, 2, 0, 1};
    Tensor seg_t = Tensor::zeros({kBatch * kSeq}, DType::I32), pos_t = Tensor::zeros({kBatch * kSeq}, DType::I32);
    std::copy(seg.begin(), seg.end(), seg_t.data<std::int32_t>());
    std::copy(pos.begin(), pos.end(), pos_t.data<std::int32_t>());
    be.write(step.segments(), seg_t);
    be.write(step.positions(), pos_t);
  }
  const double loss0 = forward_backward(be, step, labels);
  const LoraAdapter grads = read_lora_grads(be, bl, ad);
  std::printf("tiny Llama loss %.6f\n", loss0);

  // Central differences of the same loss, re-running the recorded forward after each perturbation.
  be.begin();
  step.record_forward();
  be.end();
  auto loss_at = [&](const LoraAdapter& perturbed) {
    write_lora(be, bl, perturbed);
    be.run();
    return test::host_cross_entropy(be.read(step.logits()), labels, nullptr);
  };
  const double h = 1e-5, tol = 1e-6;
  double worst = 0;
  int checks = 0;
  for (std::size_t mi = 0; mi < ad.modules.size(); ++mi)
    for (int which = 0; which < 2; ++which) {
      const LoraModule& mod = ad.modules[mi];
      const std::string what = mod.name() + (which ? ".B" : ".A");
      const Tensor& g = which ? grads.modules[mi].b : grads.modules[mi].a;
      const std::int64_t n = g.numel();
      // A random direction over every element, then three single elements.
      std::vector<std::vector<double>> dirs(1, std::vector<double>(static_cast<std::size_t>(n)));
      for (auto& d : dirs[0]) d = uniform(s, -1, 1);
      for (int e = 0; e < 3; ++e) {
        std::vector<double> d(static_cast<std::size_t>(n), 0.0);
        d[splitmix64(s) % static_cast<std::uint64_t>(n)] = 1.0;
        dirs.push_back(d);
      }
      for (const auto& d : dirs) {
        double analytic = 0;
        for (std::int64_t i = 0; i < n; ++i) analytic += g.data<double>()[i] * d[static_cast<std::size_t>(i)];
        double sides[2];
        for (int side = 0; side < 2; ++side) {
          LoraAdapter p = ad;
          Tensor t = (which ? ad.modules[mi].b : ad.modules[mi].a).clone();
          for (std::int64_t i = 0; i < n; ++i) t.data<double>()[i] += (side ? -h : h) * d[static_cast<std::size_t>(i)];
          (which ? p.modules[mi].b : p.modules[mi].a) = t;
          sides[side] = loss_at(p);
        }
        const double numeric = (sides[0] - sides[1]) / (2 * h);
        const double err = rel_err(analytic, numeric);
        worst = std::max(worst, err);
        ++checks;
        EXPECT_LE(err, tol) << what << ": analytic " << analytic << ", central difference " << numeric;
      }
      EXPECT_GT(std::fabs(g.data<double>()[0]) + std::fabs(g.data<double>()[n - 1]), 0.0) << what << " is zero";
    }
  std::printf("%d directional checks over %zu modules, worst relative error %.3g\n", checks, ad.modules.size(),
              worst);
}

TEST(LlamaLoraGradCheck, EveryAdaptedModuleInterleavedRope) { gradient_check(RopeLayout::Interleaved, false); }
TEST(LlamaLoraGradCheck, EveryAdaptedModuleRotateHalfRope) { gradient_check(RopeLayout::RotateHalf, false); }
TEST(LlamaLoraGradCheck, EveryAdaptedModulePackedDocuments) { gradient_check(RopeLayout::Interleaved, true); }

// Gradient accumulation: a step recorded with accumulate_grads adds its micro-batch's dA/dB to what is there, so
// two micro-batches give the sum of their separate gradients; a step without it starts from zero again.
TEST(LlamaLoraStep, AccumulatedGradientsAreTheSumOfMicroBatches) {
  const LlamaModel model = tiny_llama(RopeLayout::Interleaved, 3);
  std::uint64_t s = 5;
  const LoraAdapter ad = tiny_adapter(model, s);
  ref::CpuBackend be;
  const BackendLlama bm = upload_llama(be, model);
  const BackendLora bl = upload_lora(be, bm, ad);
  LoraStepOptions so;
  so.batch = kBatch;
  so.seq_len = kSeq;
  LlamaLoraStep first(be, bm, bl, so);
  so.accumulate_grads = true;
  LlamaLoraStep more(be, bm, bl, so);
  std::uint64_t s1 = 21, s2 = 22;
  const std::vector<std::int32_t> labels1 = write_random_batch(be, first, s1);
  const std::vector<std::int32_t> labels2 = write_random_batch(be, more, s2);
  forward_backward(be, first, labels1);
  const LoraAdapter g1 = read_lora_grads(be, bl, ad);
  forward_backward(be, more, labels2);
  const LoraAdapter sum = read_lora_grads(be, bl, ad);
  std::uint64_t s2_again = 22;
  write_random_batch(be, first, s2_again);
  forward_backward(be, first, labels2);  // 'first' zeroes the gradients: micro-batch 2 alone
  const LoraAdapter g2 = read_lora_grads(be, bl, ad);
  double worst = 0;
  for (std::size_t i = 0; i < ad.modules.size(); ++i)
    for (int which = 0; which < 2; ++which) {
      const Tensor& a = which ? g1.modules[i].b : g1.modules[i].a;
      const Tensor& b = which ? g2.modules[i].b : g2.modules[i].a;
      const Tensor& got = which ? sum.modules[i].b : sum.modules[i].a;
      for (std::int64_t k = 0; k < a.numel(); ++k) {
        const double want = a.data<double>()[k] + b.data<double>()[k];
        worst = std::max(worst, std::fabs(got.data<double>()[k] - want));
        ASSERT_NE(a.data<double>()[k], b.data<double>()[k]) << "micro-batches too alike to tell sum from either";
      }
    }
  EXPECT_LT(worst, 1e-14);  // f64 sums of O(0.1) values
}

// The output head in chunks of logits_rows (the loss of each chunk between its forward and backward) gives the
// gradients of the head in one piece.
TEST(LlamaLoraStep, ChunkedHeadGivesTheSameGradients) {
  const LlamaModel model = tiny_llama(RopeLayout::Interleaved, 3);
  std::uint64_t s = 5;
  const LoraAdapter ad = tiny_adapter(model, s);
  ref::CpuBackend be;
  const BackendLlama bm = upload_llama(be, model);
  const BackendLora bl = upload_lora(be, bm, ad);
  LoraStepOptions so;
  so.batch = kBatch;
  so.seq_len = kSeq;
  LlamaLoraStep whole(be, bm, bl, so);
  so.logits_rows = 2;
  LlamaLoraStep chunked(be, bm, bl, so);
  ASSERT_EQ(chunked.head_chunks(), 5);
  EXPECT_THROW(chunked.record_forward(), InvalidArgument);
  std::uint64_t s1 = 31, s1_again = 31;
  const std::vector<std::int32_t> labels = write_random_batch(be, whole, s1);
  write_random_batch(be, chunked, s1_again);
  const double loss_whole = forward_backward(be, whole, labels);
  const LoraAdapter g_whole = read_lora_grads(be, bl, ad);
  const double loss_chunked = test::run_step_with_host_loss(be, chunked, labels);
  const LoraAdapter g_chunked = read_lora_grads(be, bl, ad);
  EXPECT_NEAR(loss_chunked, loss_whole, 1e-13);
  for (std::size_t i = 0; i < ad.modules.size(); ++i)
    for (int which = 0; which < 2; ++which) {
      const Tensor& w = which ? g_whole.modules[i].b : g_whole.modules[i].a;
      const Tensor& c = which ? g_chunked.modules[i].b : g_chunked.modules[i].a;
      for (std::int64_t k = 0; k < w.numel(); ++k)
        ASSERT_NEAR(c.data<double>()[k], w.data<double>()[k], 1e-13) << ad.modules[i].name() << " " << k;
    }
  so.logits_rows = 3;  // does not divide 10 tokens
  EXPECT_TRUE(test::mentions(test::error_of<InvalidArgument>([&] { LlamaLoraStep{be, bm, bl, so}; }),
                             {"logits_rows 3", "10 tokens"}));
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// The dropout key is data: one recorded forward draws a new mask per written key (the same mask for the same key),
// and record_body_forward(false) (evaluation) is the forward of the same adapter without dropout.
TEST(LlamaLoraStep, DropoutKeyWrittenBeforeEachRunDrawsItsMask) {
  const LlamaModel model = tiny_llama(RopeLayout::Interleaved, 3);
  std::uint64_t s = 5;
  LoraAdapter ad = tiny_adapter(model, s);
  ad.config.dropout = 0.3f;
  ref::CpuBackend be;
  const BackendLlama bm = upload_llama(be, model);
  const BackendLora bl = upload_lora(be, bm, ad);
  LoraStepOptions so;
  so.batch = kBatch;
  so.seq_len = kSeq;
  so.dropout_seed = 9;
  LlamaLoraStep step(be, bm, bl, so);
  std::uint64_t batch_seed = s;
  write_random_batch(be, step, s);
  be.begin();
  step.record_forward();
  const Backend::Program train = be.end();
  be.begin();
  step.record_body_forward(/*dropout=*/false);
  step.record_head_forward(0);
  const Backend::Program eval = be.end();
  auto logits = [&](Backend::Program p, std::uint32_t step_no, std::uint32_t micro) {
    step.write_dropout_key(step_no, micro);
    be.run(p);
    return be.read(step.logits());
  };
  const Tensor s1 = logits(train, 1, 0), s2 = logits(train, 2, 0), m1 = logits(train, 1, 1), again = logits(train, 1, 0);
  EXPECT_FALSE(bit_equal(s1, s2));
  EXPECT_FALSE(bit_equal(s1, m1));
  EXPECT_TRUE(bit_equal(s1, again));
  const Tensor e1 = logits(eval, 1, 0), e2 = logits(eval, 2, 0);
  EXPECT_TRUE(bit_equal(e1, e2)) << "evaluation must not depend on the dropout key";

  LoraAdapter no_dropout = ad;
  no_dropout.config.dropout = 0.0f;
  const BackendLora bl0 = upload_lora(be, bm, no_dropout);
  LlamaLoraStep plain(be, bm, bl0, so);
  write_random_batch(be, plain, batch_seed);  // the same batch
  be.begin();
  plain.record_forward();
  be.end();
  be.run();
  EXPECT_TRUE(bit_equal(be.read(plain.logits()), e1));
}

// Gradient checkpointing recomputes each layer's forward (same ops, same inputs, same dropout key) into one shared
// set of activations before its backward: the loss and every gradient are the same bits as without it, with
// dropout on, a chunked head, packed documents, and with targets only some of the linears.
void expect_checkpointing_changes_no_bit(const std::vector<LoraTarget>& targets) {
  const LlamaModel model = tiny_llama(RopeLayout::RotateHalf, 3);
  std::uint64_t s = 5;
  LoraAdapter ad = tiny_adapter(model, s);
  ad.config.dropout = 0.2f;
  std::erase_if(ad.modules, [&](const LoraModule& m) {
    return std::find(targets.begin(), targets.end(), m.target) == targets.end();
  });
  ref::CpuBackend be;
  const BackendLlama bm = upload_llama(be, model);
  const BackendLora bl = upload_lora(be, bm, ad);
  LoraStepOptions so;
  so.batch = kBatch;
  so.seq_len = kSeq;
  so.segments = true;
  so.dropout_seed = 4;
  so.logits_rows = 5;
  LlamaLoraStep plain(be, bm, bl, so);
  so.checkpointing = true;
  LlamaLoraStep ckpt(be, bm, bl, so);
  double loss[2];
  LoraAdapter grads[2];
  for (int i = 0; i < 2; ++i) {
    LlamaLoraStep& step = i ? ckpt : plain;
    std::uint64_t batch_seed = 8;
    const std::vector<std::int32_t> labels = write_random_batch(be, step, batch_seed);
    Tensor seg = Tensor::zeros({kBatch * kSeq}, DType::I32);
    for (std::int64_t t = 0; t < kBatch * kSeq; ++t) seg.data<std::int32_t>()[t] = t % kSeq < 2 ? 0 : 1;
    be.write(step.segments(), seg);
    step.write_dropout_key(3, 1);
    loss[i] = test::run_step_with_host_loss(be, step, labels);
    grads[i] = read_lora_grads(be, bl, ad);
  }
  EXPECT_EQ(loss[0], loss[1]);
  for (std::size_t i = 0; i < ad.modules.size(); ++i) {
    EXPECT_TRUE(bit_equal(grads[0].modules[i].a, grads[1].modules[i].a)) << ad.modules[i].name() << ".A";
    EXPECT_TRUE(bit_equal(grads[0].modules[i].b, grads[1].modules[i].b)) << ad.modules[i].name() << ".B";
  }
}

TEST(LlamaLoraStep, CheckpointingGivesBitIdenticalGradients) {
  expect_checkpointing_changes_no_bit({kAllLoraTargets.begin(), kAllLoraTargets.end()});
}

TEST(LlamaLoraStep, CheckpointingGivesBitIdenticalGradientsWithSomeTargets) {
  expect_checkpointing_changes_no_bit({LoraTarget::V, LoraTarget::Down});
}

// The checkpointed step passes the whole-model gradient check too (its gradients are the plain step's bits, and
// those pass it; this runs the recorded programs a checkpointed trainer runs: forward, then backward alone).
TEST(LlamaLoraGradCheck, EveryAdaptedModuleWithCheckpointing) { gradient_check(RopeLayout::Interleaved, false, true); }

TEST(LlamaLoraStep, AdapterOfAnotherModelOrEmptyBatchIsRefused) {
  const LlamaModel model = tiny_llama(RopeLayout::Interleaved, 3);
  std::uint64_t s = 5;
  LoraAdapter ad = tiny_adapter(model, s);
  ref::CpuBackend be;
  const BackendLlama bm = upload_llama(be, model);
  LlamaConfig wider = model.config;
  wider.hidden_dim = 32;
  LoraConfig c = ad.config;
  const LoraAdapter other = init_lora_adapter(wider, RopeLayout::Interleaved, c, 1);
  EXPECT_TRUE(test::mentions(test::error_of<ShapeError>([&] { upload_lora(be, bm, other); }),
                             {"'layers.0.gate'", "[3, 16]", "[32, 3]", "[24, 3]"}));
  const BackendLora bl = upload_lora(be, bm, ad);
  LoraStepOptions so;
  so.batch = 0;
  so.seq_len = kSeq;
  EXPECT_TRUE(test::mentions(test::error_of<InvalidArgument>([&] { LlamaLoraStep{be, bm, bl, so}; }), {"batch 0"}));
}

}  // namespace
}  // namespace pocketlora
