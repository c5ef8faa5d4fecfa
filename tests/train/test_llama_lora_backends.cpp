// The Llama + LoRA step on the real stories260K model (NF4 base, LoRA r=8 on all seven linears):
// - an adapter with B = 0 leaves the logits of every sequence of the batch equal to llama_forward_logits';
// - the CPU and Vulkan backends agree on the loss and on every LoRA gradient (nonzero B, dropout on; the Vulkan
//   step runs its output head in chunks);
// - f16 activations (mixed precision) stay within a stated bound of the f32 step's loss and LoRA gradients, on
//   each backend.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>

#include "common/test_data.h"
#include "host/ref/cpu_backend.h"
#include "host/train/llama_lora_step.h"
#include "host/util/splitmix64.h"
#include "train/host_loss.h"
#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/ops/vulkan_backend.h"
#endif

namespace pocketlora {
namespace {

using test::data_path;

constexpr std::int64_t kBatch = 2, kSeq = 16;

// The first B*S ids of run.c's sample (BOS + 200 generated tokens): real text, two sequences of 16.
std::vector<std::int32_t> sample_ids() {
  nlohmann::json ids =
      nlohmann::json::parse(std::ifstream(data_path("models/stories260K/expected/runc_t0_n200.ids.json")));
  std::vector<std::int32_t> out;
  for (std::int64_t i = 0; i < kBatch * kSeq; ++i)
    out.push_back(ids.at("tokens_bos_plus_200").at(static_cast<std::size_t>(i)).get<std::int32_t>());
  return out;
}

LoraAdapter adapter_r8(const LlamaModel& m, float dropout, bool random_b) {
  LoraConfig c;
  c.rank = 8;
  c.alpha = 16;
  c.dropout = dropout;
  LoraAdapter ad = init_lora_adapter(m.config, m.rope_layout, c, 1234);
  std::uint64_t s = 5;
  if (random_b)
    for (auto& mod : ad.modules)
      for (std::int64_t i = 0; i < mod.b.numel(); ++i)
        mod.b.data<float>()[i] = static_cast<float>((static_cast<double>(splitmix64(s) >> 11) * 0x1.0p-53 - 0.5) * 0.2);
  return ad;
}

struct StepResult {
  Tensor logits;
  double loss = 0;
  LoraAdapter grads;
};

// One step with the host loss; logits_rows 0 runs the head in one chunk. table_dtype: the embedding table's and
// head's storage on the backend (upload_llama).
StepResult run_step(Backend& be, const LlamaModel& m, const LoraAdapter& ad, const std::vector<std::int32_t>& ids,
                    std::uint64_t dropout_seed, std::int64_t batch = kBatch, std::int64_t logits_rows = 0,
                    bool checkpointing = false, std::optional<DType> table_dtype = std::nullopt,
                    DType activations = DType::F32) {
  const BackendLlama bm = upload_llama(be, m, table_dtype);
  EXPECT_EQ(bm.tok_embeddings.dtype, table_dtype.value_or(m.tok_embeddings.dtype()));
  EXPECT_EQ(bm.activations, m.tok_embeddings.dtype());
  const BackendLora bl = upload_lora(be, bm, ad);
  LoraStepOptions so;
  so.batch = batch;
  so.seq_len = kSeq;
  so.dropout_seed = dropout_seed;
  so.logits_rows = logits_rows;
  so.checkpointing = checkpointing;
  so.activations = activations;
  LlamaLoraStep step(be, bm, bl, so);
  const std::vector<std::int32_t> batch_ids(ids.begin(), ids.begin() + batch * kSeq);
  Tensor ids_t = Tensor::zeros({batch * kSeq}, DType::I32);
  std::copy(batch_ids.begin(), batch_ids.end(), ids_t.data<std::int32_t>());
  be.write(step.ids(), ids_t);
  StepResult r;
  if (logits_rows == 0) {  // keep the whole logits for the B = 0 comparison
    be.begin();
    step.record_forward();
    be.end();
    be.run();
    r.logits = be.read(step.logits());
  }
  r.loss = test::run_step_with_host_loss(be, step, test::next_token_labels(batch_ids, kSeq));
  r.grads = read_lora_grads(be, bl, ad);
  be.free_step();
  return r;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(t.data<float>()[i])));
  return m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double d = std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]);
    m = std::isnan(d) ? INFINITY : std::max(m, d);
  }
  return m;
}

// By default the loss within 1e-5 relative, every gradient within 1e-4 of its tensor's largest entry: the bounds
// between backends, which decode the same NF4 weights and draw the same Philox dropout mask, so what remains is f32
// accumulation order (the CPU reference sums in f64). Returns the worst gradient difference.
double expect_steps_agree(const StepResult& want, const StepResult& got, double loss_rel = 1e-5,
                          double grad_rel = 1e-4) {
  EXPECT_LE(std::fabs(got.loss - want.loss), loss_rel * std::fabs(want.loss));
  double worst = 0;
  for (std::size_t i = 0; i < want.grads.modules.size(); ++i) {
    const auto& w = want.grads.modules[i];
    const auto& g = got.grads.modules[i];
    for (int which = 0; which < 2; ++which) {
      const Tensor& wt = which ? w.b : w.a;
      const Tensor& gt = which ? g.b : g.a;
      EXPECT_GT(max_abs(wt), 0.0) << w.name();
      const double rel = max_abs_diff(gt, wt) / max_abs(wt);
      worst = std::max(worst, rel);
      EXPECT_LE(rel, grad_rel) << w.name() << (which ? ".B" : ".A");
    }
  }
  return worst;
}

// Mixed precision against f32 on one backend. f16 storage rounds every activation, T and activation gradient
// to 2^-11 relative, and the errors compound through the model's 5 layers. Measured (batch 2 x 16, dropout 0.1):
// loss 4.5e-4 relative on Vulkan, 2.9e-5 on the CPU (5.3e-4 / 4.1e-4 without dropout: the sign and size of the
// shift is rounding noise, the CPU rounding from f64 and the GPU from f32); the worst LoRA gradient 2.1e-2 of its
// tensor's largest entry on both (gradients sum products over tokens, and some cancel). Bounds with ~4x margin:
// loss 2e-3 relative, every gradient 5e-2 of its largest entry.
void expect_f16_close_to_f32(const StepResult& f32, const StepResult& f16, const char* backend) {
  const double grad = expect_steps_agree(f32, f16, 2e-3, 5e-2);
  std::printf("%s, f16 activations vs f32: loss %.7f vs %.7f (relative %.3g), worst LoRA gradient difference %.3g\n",
              backend, f16.loss, f32.loss, std::fabs(f16.loss - f32.loss) / std::fabs(f32.loss), grad);
}

#define REQUIRE_STORIES_DATA()                                                    \
  POCKETLORA_REQUIRE_DATA(bin_path_, "models/stories260K/stories260K.bin");      \
  POCKETLORA_REQUIRE_DATA(ids_path_, "models/stories260K/expected/runc_t0_n200.ids.json")

TEST(LlamaLoraStep, ZeroBAdapterLeavesEachSequencesLogitsUnchanged) {
  REQUIRE_STORIES_DATA();
  const LlamaModel m = load_llama_model(bin_path_, BaseQuant::Nf4);
  const std::vector<std::int32_t> ids = sample_ids();
  ref::CpuBackend be;
  const StepResult r = run_step(be, m, adapter_r8(m, 0.0f, false), ids, 0);
  const StepResult one = run_step(be, m, adapter_r8(m, 0.0f, false), ids, 0, 1);
  for (std::int64_t b = 0; b < kBatch; ++b) {
    ref::CpuBackend plain;
    const BackendLlama bm = upload_llama(plain, m);
    const std::span<const std::int32_t> seq(ids.data() + b * kSeq, kSeq);
    const Tensor want = llama_forward_logits(plain, bm, seq);
    const Tensor got = r.logits.slice_rows(b * kSeq, (b + 1) * kSeq).clone();
    // s * (x A^T) B^T with B = 0 adds exact zeros: a batch of one sequence gives llama_forward_logits' bits. In a
    // batch of two the GEMMs see 32 rows instead of 16 and OpenBLAS blocks them differently, so the f32 sums
    // round differently (measured 1.2e-5 on logits of ~15): 1e-5 of the largest logit, as the NF4 forward tests.
    EXPECT_LE(max_abs_diff(got, want), 1e-5 * max_abs(want)) << "sequence " << b;
    if (b == 0) {
      EXPECT_EQ(max_abs_diff(one.logits, want), 0.0) << "batch of one";
    }
  }
  // The sample is the model's own greedy continuation, so its next-token loss is low (measured 0.448).
  EXPECT_GT(r.loss, 0.1);
  EXPECT_LT(r.loss, 2.0);
}

TEST(LlamaLoraStep, CpuF16ActivationsStayWithinBoundOfF32) {
  REQUIRE_STORIES_DATA();
  const LlamaModel m = load_llama_model(bin_path_, BaseQuant::Nf4);
  const std::vector<std::int32_t> ids = sample_ids();
  const LoraAdapter ad = adapter_r8(m, 0.1f, true);
  ref::CpuBackend be;
  const StepResult f32 = run_step(be, m, ad, ids, 77);
  const StepResult f16 = run_step(be, m, ad, ids, 77, kBatch, 0, false, std::nullopt, DType::F16);
  expect_f16_close_to_f32(f32, f16, "CPU");
}

// The embedding table and the (tied) head stored f16 instead of f32: every input of the step's first and last
// ops moves by up to 2^-11 relative, and the loss and the gradients move by about that much. Measured on the CPU
// backend: loss 2.7e-5 relative, gradients 1.6e-3 of each tensor's largest entry; bounds: the loss 5e-4 relative
// (about 2^-11), the gradients 1e-2.
TEST(LlamaLoraStep, F16EmbeddingAndHeadStayCloseToF32) {
  REQUIRE_STORIES_DATA();
  const LlamaModel m = load_llama_model(bin_path_, BaseQuant::Nf4);
  const std::vector<std::int32_t> ids = sample_ids();
  const LoraAdapter ad = adapter_r8(m, 0.1f, true);
  ref::CpuBackend cpu;
  const StepResult f32 = run_step(cpu, m, ad, ids, 77);
  const StepResult f16 = run_step(cpu, m, ad, ids, 77, kBatch, 0, false, DType::F16);
  EXPECT_NE(f16.loss, f32.loss);  // the f16 table is in use: the loss moved
  const double worst = expect_steps_agree(f32, f16, 5e-4, 1e-2);
  std::printf("f16 embedding/head vs f32 (cpu): loss %.7f vs %.7f (%.3g relative), worst gradient %.3g\n", f16.loss,
              f32.loss, std::fabs(f16.loss - f32.loss) / std::fabs(f32.loss), worst);
}

#if POCKETLORA_HAS_VULKAN
using VulkanLlamaLoraStep = test::GpuTest;

TEST_F(VulkanLlamaLoraStep, F16ActivationsStayWithinBoundOfF32) {
  REQUIRE_STORIES_DATA();
  const LlamaModel m = load_llama_model(bin_path_, BaseQuant::Nf4);
  const std::vector<std::int32_t> ids = sample_ids();
  const LoraAdapter ad = adapter_r8(m, 0.1f, true);
  ops::VulkanBackend gpu(dev());
  const StepResult f32 = run_step(gpu, m, ad, ids, 77, kBatch, kSeq);
  const StepResult f16 = run_step(gpu, m, ad, ids, 77, kBatch, kSeq, false, std::nullopt, DType::F16);
  expect_f16_close_to_f32(f32, f16, "Vulkan");
}

TEST_F(VulkanLlamaLoraStep, LossAndEveryLoraGradientAgreeWithCpuBackend) {
  REQUIRE_STORIES_DATA();
  const LlamaModel m = load_llama_model(bin_path_, BaseQuant::Nf4);
  const std::vector<std::int32_t> ids = sample_ids();
  const LoraAdapter ad = adapter_r8(m, 0.1f, true);
  ref::CpuBackend cpu;
  ops::VulkanBackend gpu(dev());
  // The Vulkan step runs its head in two chunks (one per sequence) on view_rows of the final norm's output.
  const StepResult want = run_step(cpu, m, ad, ids, 77), got = run_step(gpu, m, ad, ids, 77, kBatch, kSeq);
  std::printf("stories260K NF4 + LoRA r=8: loss cpu %.7f vulkan %.7f\n", want.loss, got.loss);
  std::printf("worst LoRA gradient difference: %.3g of the tensor's largest entry\n", expect_steps_agree(want, got));
}

// The f16 embedding table and head on Vulkan (the f16 lookup and the f16-weight matmuls of the head's forward and
// backward) against the CPU backend with the same f16 table: the same bounds as the f32 comparison above, as both
// read the same f16 values and accumulate in f32.
TEST_F(VulkanLlamaLoraStep, F16EmbeddingAndHeadAgreeWithCpuBackend) {
  REQUIRE_STORIES_DATA();
  const LlamaModel m = load_llama_model(bin_path_, BaseQuant::Nf4);
  const std::vector<std::int32_t> ids = sample_ids();
  const LoraAdapter ad = adapter_r8(m, 0.1f, true);
  ref::CpuBackend cpu;
  ops::VulkanBackend gpu(dev());
  const StepResult want = run_step(cpu, m, ad, ids, 77, kBatch, 0, false, DType::F16),
                   got = run_step(gpu, m, ad, ids, 77, kBatch, kSeq, false, DType::F16);
  std::printf("f16 table, Vulkan vs CPU: worst LoRA gradient difference %.3g of the tensor's largest entry\n",
              expect_steps_agree(want, got));
}

// The embedding table and the tied head split by rows across bindings, as a 128k vocabulary is on any device
// (maxStorageBufferRange / the 64 MiB arena block): a device whose arena blocks are 32 KiB splits stories260K's
// 128 KiB f32 table into 4 chunks (64 KiB f16: 2) and nothing else of the step. The lookup and both head matmuls
// then run per chunk; the loss and gradients agree with the CPU backend within the bounds above.
TEST(VulkanLlamaLoraStepChunkedTable, HeadOverRowChunkedTableAgreesWithCpuBackend) {
  POCKETLORA_REQUIRE_GPU();
  REQUIRE_STORIES_DATA();
  const LlamaModel m = load_llama_model(bin_path_, BaseQuant::Nf4);
  ASSERT_EQ(m.tok_embeddings.nbytes(), 128u * 1024);
  const std::vector<std::int32_t> ids = sample_ids();
  const LoraAdapter ad = adapter_r8(m, 0.1f, true);
  vk::DeviceOptions o;
  o.block_size = 32 * 1024;
  test::OwnDevice own(o);
  for (DType table : {DType::F32, DType::F16}) {
    ref::CpuBackend cpu;
    ops::VulkanBackend gpu(own.dev());
    const StepResult want = run_step(cpu, m, ad, ids, 77, kBatch, 0, false, table),
                     got = run_step(gpu, m, ad, ids, 77, kBatch, kSeq, false, table);
    std::printf("%s table in row chunks, Vulkan vs CPU: worst LoRA gradient difference %.3g\n", dtype_name(table),
                expect_steps_agree(want, got));
  }
}

// Gradient checkpointing on Vulkan (each layer recomputed before its backward, dropout on): the CPU backend's loss
// and gradients without checkpointing within the same bounds as above.
TEST_F(VulkanLlamaLoraStep, CheckpointedStepAgreesWithCpuBackend) {
  REQUIRE_STORIES_DATA();
  const LlamaModel m = load_llama_model(bin_path_, BaseQuant::Nf4);
  const std::vector<std::int32_t> ids = sample_ids();
  const LoraAdapter ad = adapter_r8(m, 0.1f, true);
  ref::CpuBackend cpu;
  ops::VulkanBackend gpu(dev());
  const StepResult want = run_step(cpu, m, ad, ids, 77),
                   got = run_step(gpu, m, ad, ids, 77, kBatch, kSeq, /*checkpointing=*/true);
  std::printf("checkpointed Vulkan step: worst LoRA gradient difference %.3g of the tensor's largest entry\n",
              expect_steps_agree(want, got));
}
#endif

}  // namespace
}  // namespace pocketlora
