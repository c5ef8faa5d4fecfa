// The training engine end to end (host/train/step_engine.h, host/train/trainer.h):
// - the loss and every LoRA gradient of stories260K (f32 base) against the PyTorch oracle's golden file;
// - 10 optimizer steps on the CPU and the Vulkan backend give the same losses and adapters;
// - a run stopped after a checkpoint and resumed ends with the adapter an uninterrupted run ends with, bit for bit
//   on the CPU backend;
// - bad input is refused before anything is written.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/formats/gguf_writer.h"
#include "host/formats/safetensors.h"
#include "host/model/llama_weights.h"
#include "host/ref/cpu_backend.h"
#include "host/tokenizer/tokenizer.h"
#include "host/train/checkpoint.h"
#include "host/train/llama_lora_step.h"
#include "host/train/step_engine.h"
#include "host/train/trainer.h"
#include "host/util/stop_request.h"
#include "train/small_run.h"
#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/ops/vulkan_backend.h"
#endif

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::data_path;
using test::error_of;
using test::mentions;

// max |got - want| / max |want| over a tensor: gradients span orders of magnitude, so each is compared at the
// scale of its largest entry.
double scaled_error(const Tensor& got, const Tensor& want) {
  const Tensor g = got.to(DType::F64), w = want.to(DType::F64);
  double diff = 0, scale = 0;
  for (std::int64_t i = 0; i < w.numel(); ++i) {
    diff = std::max(diff, std::fabs(g.data<double>()[i] - w.data<double>()[i]));
    scale = std::max(scale, std::fabs(w.data<double>()[i]));
  }
  return diff / std::max(scale, 1e-30);
}

// ---------------------------------------------------------------------------------------------------------------
// The PyTorch oracle (tools/torch_lora_oracle.py -> tests/golden/stories260k_lora_oracle.safetensors).

std::string peft_key(std::int64_t layer, LoraTarget t) {
  const bool attn = t == LoraTarget::Q || t == LoraTarget::K || t == LoraTarget::V || t == LoraTarget::O;
  return "base_model.model.model.layers." + std::to_string(layer) + (attn ? ".self_attn." : ".mlp.") +
         lora_target_hf_name(t);
}

// HF rotate_half rows -> the model's interleaved rows, for q/k lora_B and their gradients.
Tensor to_model_rows(const Tensor& b, LoraTarget t, const LlamaConfig& c) {
  if (t == LoraTarget::Q) return permute_rows_hf_to_interleaved(b, c.n_heads, c.head_dim);
  if (t == LoraTarget::K) return permute_rows_hf_to_interleaved(b, c.n_kv_heads, c.head_dim);
  return b;
}

void check_oracle(Backend& be) {
  POCKETLORA_REQUIRE_DATA(model_path, "models/stories260K/derived/hf/model.safetensors");
  const fs::path golden = fs::path(POCKETLORA_SOURCE_DIR) / "tests/golden/stories260k_lora_oracle.safetensors";
  const SafetensorsFile f = SafetensorsFile::open(golden);
  const LlamaModel m = load_llama_model(model_path, BaseQuant::None);
  ASSERT_EQ(m.rope_layout, RopeLayout::Interleaved);
  LoraConfig cfg;
  cfg.rank = 8;
  cfg.alpha = 16;
  LoraAdapter ad = init_lora_adapter(m.config, m.rope_layout, cfg, 0);
  for (auto& mod : ad.modules) {
    const std::string k = peft_key(mod.layer, mod.target);
    mod.a = f.tensor(k + ".lora_A.weight").to(DType::F32);
    mod.b = to_model_rows(f.tensor(k + ".lora_B.weight").to(DType::F32), mod.target, m.config);
  }
  const Tensor ids = f.tensor("ids").to(DType::F64), labels = f.tensor("labels").to(DType::F64);
  const std::int64_t B = ids.dim(0), S = ids.dim(1);
  TokenBatch batch;
  batch.batch = B;
  batch.seq_len = S;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < S; ++t) {
      batch.ids.push_back(static_cast<std::int32_t>(ids.data<double>()[b * S + t]));
      batch.positions.push_back(static_cast<std::int32_t>(t));
      // HF shift: the logits at t are scored against labels[t + 1].
      const auto y = t + 1 < S ? static_cast<std::int32_t>(labels.data<double>()[b * S + t + 1]) : kIgnoreIndex;
      batch.targets.push_back(y);
      batch.target_count += y != kIgnoreIndex;
    }

  const BackendLlama bm = upload_llama(be, m);
  const BackendLora bl = upload_lora(be, bm, ad);
  LlamaLoraStep step(be, bm, bl, {B, S, false, false, 0, 0});
  const BTensor targets = be.alloc({B * S}, DType::I32, Lifetime::Step, "targets");
  const BTensor lse = be.alloc({B * S}, DType::F32, Lifetime::Step, "lse");
  const BTensor totals = be.alloc({2}, DType::F32, Lifetime::Step, "totals");
  Tensor scale_host = Tensor::zeros({1});
  scale_host.data<float>()[0] = 1.0f / static_cast<float>(batch.target_count);
  const BTensor scale = be.upload(scale_host, Lifetime::Step, "scale");
  auto i32 = [](const std::vector<std::int32_t>& v) {
    Tensor t = Tensor::zeros({static_cast<std::int64_t>(v.size())}, DType::I32);
    std::copy(v.begin(), v.end(), t.data<std::int32_t>());
    return t;
  };
  be.write(step.ids(), i32(batch.ids));
  be.write(targets, i32(batch.targets));
  be.begin();
  be.fill(totals, 0.0f);
  step.record_forward();
  be.cross_entropy(step.logits(), targets, lse, totals);
  be.cross_entropy_backward(step.logits(), targets, lse, scale, step.dlogits());
  step.record_backward();
  be.end();
  be.run();
  const Tensor tot = be.read(totals);
  const double loss = tot.data<float>()[0] / tot.data<float>()[1];
  const double want_loss = f.tensor("loss").to(DType::F64).data<double>()[0];
  // f32 forward against an f64 oracle: ~1e-7 relative per op over ~15 ops per layer.
  EXPECT_NEAR(loss / want_loss, 1.0, 1e-5) << "loss " << loss << " oracle " << want_loss;
  const LoraAdapter grads = read_lora_grads(be, bl, ad);
  double worst = 0;
  for (const auto& g : grads.modules) {
    const std::string k = peft_key(g.layer, g.target);
    const double ea = scaled_error(g.a, f.tensor(k + ".lora_A.grad"));
    const double eb = scaled_error(g.b, to_model_rows(f.tensor(k + ".lora_B.grad").to(DType::F32), g.target, m.config));
    // f32 gradients through 5 layers against f64: 1e-4 of each tensor's largest entry (the bound).
    EXPECT_LT(ea, 1e-4) << k << " lora_A";
    EXPECT_LT(eb, 1e-4) << k << " lora_B";
    worst = std::max({worst, ea, eb});
  }
  ::testing::Test::RecordProperty("worst_scaled_gradient_error", std::to_string(worst));
  be.free_step();
}

TEST(TrainOracle, CpuBackendMatchesPyTorchLossAndGradients) {
  ref::CpuBackend be;
  check_oracle(be);
}

#if POCKETLORA_HAS_VULKAN
using VulkanTrainOracle = test::GpuTest;
TEST_F(VulkanTrainOracle, MatchesPyTorchLossAndGradients) {
  ops::VulkanBackend be(dev());
  check_oracle(be);
}
#endif

// ---------------------------------------------------------------------------------------------------------------
// Optimizer steps through the engine.

struct Trajectory {
  std::vector<double> losses;
  std::vector<std::pair<std::string, Tensor>> adapter;
};

Trajectory train_steps(Backend& be, int steps, std::optional<DType> activations = std::nullopt) {
  const LlamaModel m = load_llama_model(data_path("models/stories260K/stories260K.bin"), BaseQuant::Nf4);
  auto tok = load_tokenizer(data_path("models/stories260K/tok512.bin"));
  TrainDataOptions dopt;
  dopt.path = data_path("datasets/tinystories_sample.txt");
  dopt.seq_len = 32;
  dopt.validation_fraction = 0;
  const TrainData data(*tok, dopt, m.config.max_seq_len, m.config.vocab_size);
  LoraConfig cfg;
  const LoraAdapter ad = init_lora_adapter(m.config, m.rope_layout, cfg, 7);
  StepEngineOptions o;
  o.micro_batch = 2;
  o.seq_len = 32;
  o.packed = true;
  o.optimizer.lr = 1e-3f;
  o.activations = activations;
  TrainStepEngine engine(be, m, ad, o);
  Trajectory tr;
  const auto order = data.epoch_order(0);
  for (int s = 0; s < steps; ++s) {
    std::vector<TokenBatch> micro;
    for (int a = 0; a < 2; ++a) {  // two micro-batches per step: accumulation on both backends
      std::vector<std::size_t> which;
      for (int w = 0; w < 2; ++w) which.push_back(order[static_cast<std::size_t>((s * 4 + a * 2 + w)) % order.size()]);
      micro.push_back(make_token_batch(data.train(), which, 2, 32, data.pad_id()));
    }
    const StepResult r = engine.step(micro, 1e-3, s + 1);
    EXPECT_FALSE(r.stats.skip);
    tr.losses.push_back(r.loss);
  }
  tr.adapter = engine.adapter_tensors();
  return tr;
}

TEST(TrainEngine, LossFallsOnTheCpuBackend) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  ref::CpuBackend be;
  const Trajectory t = train_steps(be, 10);
  // Training on the same few windows again and again: the loss must fall (B starts at 0, lr 1e-3).
  EXPECT_LT(t.losses.back(), t.losses.front() * 0.99) << t.losses.front() << " -> " << t.losses.back();
}

#if POCKETLORA_HAS_VULKAN
using VulkanTrainEngine = test::GpuTest;
TEST_F(VulkanTrainEngine, TenStepsAgreeWithTheCpuBackend) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  ref::CpuBackend cpu;
  ops::VulkanBackend gpu(dev());
  const Trajectory a = train_steps(cpu, 10), b = train_steps(gpu, 10);
  ASSERT_EQ(a.losses.size(), b.losses.size());
  // The first loss: same weights, same data; 1e-5 relative (issue 10's bound). Later ones carry the
  // difference of the updates.
  EXPECT_NEAR(b.losses[0] / a.losses[0], 1.0, 1e-5);
  for (std::size_t i = 0; i < a.losses.size(); ++i) EXPECT_NEAR(b.losses[i] / a.losses[i], 1.0, 1e-4) << "step " << i;
  ASSERT_EQ(a.adapter.size(), b.adapter.size());
  // Adapters: absolute 1e-4 (issue 10's bound). Not relative: AdamW divides by sqrt(v), so an entry whose
  // gradient is near zero moves by ~lr whatever its exact value and rounding differences between the backends
  // there are lr-sized, not gradient-sized (measured: at most 2.1e-5 absolute at lr 1e-3).
  for (std::size_t i = 0; i < a.adapter.size(); ++i) {
    const Tensor& x = a.adapter[i].second;
    const Tensor& y = b.adapter[i].second;
    double d = 0;
    for (std::int64_t j = 0; j < x.numel(); ++j)
      d = std::max(d, static_cast<double>(std::fabs(x.data<float>()[j] - y.data<float>()[j])));
    EXPECT_LT(d, 1e-4) << a.adapter[i].first;
  }
}

// Mixed precision (f16 activations, f32 adapter, gradients and optimizer state) against f32 over 20 AdamW steps on
// the same batches: every step's loss within 2e-3 relative (measured on lavapipe: at most 3.3e-4, the loss going
// 1.8828 -> 1.3755 in f16 and 1.8826 -> 1.3754 in f32), and the f16 run's loss falls by over 10%.
TEST_F(VulkanTrainEngine, F16LossCurveStaysWithinBoundOfF32) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  ops::VulkanBackend gpu(dev());
  const Trajectory a = train_steps(gpu, 20), b = train_steps(gpu, 20, DType::F16);
  ASSERT_EQ(a.losses.size(), b.losses.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.losses.size(); ++i) {
    worst = std::max(worst, std::fabs(b.losses[i] / a.losses[i] - 1.0));
    EXPECT_NEAR(b.losses[i] / a.losses[i], 1.0, 2e-3) << "step " << i;
  }
  EXPECT_LT(b.losses.back(), 0.9 * b.losses.front());
  std::printf("20 steps, f16 activations vs f32: loss %.5f -> %.5f vs %.5f -> %.5f, worst relative difference %.3g\n",
              b.losses.front(), b.losses.back(), a.losses.front(), a.losses.back(), worst);
}
#endif

// ---------------------------------------------------------------------------------------------------------------
// The trainer: resume, bad input.

using test::final_adapter;
using test::small_run;

TEST(Trainer, StoppedAndResumedRunEndsWithTheSameAdapterBitForBit) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  {
    Trainer t(small_run(tmp / "whole"));
    const TrainSummary s = t.run();
    EXPECT_EQ(s.steps_done, 6);
    EXPECT_FALSE(s.interrupted);
  }
  {
    Trainer t(small_run(tmp / "parts"));
    const TrainSummary s = t.run([](const StepReport& r) {
      if (r.step == 4) request_stop();  // as Ctrl-C would: finish the step, checkpoint, return
    });
    EXPECT_TRUE(s.interrupted);
    EXPECT_EQ(s.steps_done, 4);
  }
  {
    TrainOptions o = small_run(tmp / "parts");
    o.resume = tmp / "parts";
    Trainer t(o);
    EXPECT_EQ(t.start_step(), 4);
    const TrainSummary s = t.run();
    EXPECT_EQ(s.steps_done, 6);
  }
  const auto a = final_adapter(tmp / "whole"), b = final_adapter(tmp / "parts");
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].first, b[i].first);
    ASSERT_EQ(a[i].second.nbytes(), b[i].second.nbytes());
    EXPECT_EQ(std::memcmp(a[i].second.raw(), b[i].second.raw(), a[i].second.nbytes()), 0) << a[i].first;
  }
  // The run directory holds what a user expects.
  for (const char* f : {"adapter_model.safetensors", "adapter_config.json", "metrics.jsonl", "loss.svg"})
    EXPECT_TRUE(fs::exists(tmp / "parts" / f)) << f;
}

// --precision f16 through the whole trainer (plan, steps, validation, checkpoints) on the CPU backend, where the
// f16 activations take host/ref's widening paths: every step runs, none is skipped, the loss stays finite.
TEST(Trainer, F16PrecisionTrainsOnTheCpuBackend) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  TrainOptions o = small_run(tmp / "f16");
  o.precision = Precision::F16;
  Trainer t(o);
  const TrainSummary s = t.run();
  EXPECT_EQ(s.steps_done, 6);
  EXPECT_EQ(s.skipped, 0);
  ASSERT_TRUE(s.last_loss.has_value());
  EXPECT_TRUE(std::isfinite(*s.last_loss));
}

// Precision::Auto (the default) is resolved by the constructor: f32 on the CPU backend, whose kernels widen f16
// anyway; the run's checkpoints record it, and a resume at another precision is refused.
TEST(Trainer, AutoPrecisionIsF32OnTheCpuBackendAndResumeKeepsIt) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  TrainOptions o = small_run(tmp / "run");
  o.steps = 1;
  ASSERT_EQ(o.precision, Precision::Auto);
  Trainer t(o);
  EXPECT_EQ(t.options().precision, Precision::F32);
  t.run();
  o.resume = tmp / "run";
  o.precision = Precision::F16;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { Trainer r(o); }), {"/precision", "f32", "f16"}));
}

#if POCKETLORA_HAS_VULKAN
using VulkanTrainer = test::GpuTest;

// On Vulkan, Auto is f16 exactly when the device has 16-bit storage (the kernels' f16 variants need it).
TEST_F(VulkanTrainer, AutoPrecisionFollowsTheDevicesSixteenBitStorage) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  TrainOptions o = small_run(tmp / "run");
  o.backend = BackendKind::Vulkan;
  Trainer t(o, std::make_unique<ops::VulkanBackend>(dev()));
  EXPECT_EQ(t.options().precision, dev().caps().storage_16bit ? Precision::F16 : Precision::F32);
}
#endif

TEST(Trainer, RefusesBadInputBeforeWritingAnything) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  const fs::path out = tmp / "run";
  auto refused = [&](TrainOptions o) {
    const std::string msg = error_of<Error>([&] { Trainer t(o); });
    EXPECT_FALSE(fs::exists(out)) << "the run directory was created for: " << msg;
    return msg;
  };
  TrainOptions o = small_run(out);
  o.lora.rank = 0;
  EXPECT_TRUE(mentions(refused(o), {"rank"}));
  o = small_run(out);
  o.data.seq_len = 4096;
  EXPECT_TRUE(mentions(refused(o), {"--seq-len 4096", "context"}));
  o = small_run(out);
  std::ofstream(tmp / "empty.txt").flush();
  o.data.path = tmp / "empty.txt";
  EXPECT_TRUE(mentions(refused(o), {"empty.txt"}));
  o = small_run(out);
  o.data.path = data_path("datasets/alpaca_en_demo.json");
  o.data.chat_template = ChatTemplate::Llama2;
  o.data.seq_len = 8;  // every Alpaca prompt is longer: no response token is left to train on
  EXPECT_TRUE(mentions(refused(o), {"no token", "training target"}));
  o = small_run(out);
  {  // A GGUF of another architecture.
    GgufWriter w;
    w.set_string("general.architecture", "gpt2");
    w.set_u32("gpt2.block_count", 1);
    w.write(tmp / "gpt2.gguf");
  }
  o.model = tmp / "gpt2.gguf";
  EXPECT_TRUE(mentions(refused(o), {"gpt2.gguf", "general.architecture is 'gpt2'", "expected 'llama'"}));
  o = small_run(out);
  o.model = tmp / "missing.bin";
  EXPECT_TRUE(mentions(refused(o), {"missing.bin", "not found"}));
}

// The README demo's configuration (scripts/demo.sh), cut to 60 of its 1000 steps: the validation loss must already
// fall by at least 15% (issue 10's bound for the demo's run; measured: 4.81 -> 3.23, -33%).
TEST(Trainer, DemoConfigurationLowersValidationLoss) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(text, "datasets/tinyshakespeare_input.txt");
  test::TempDir tmp;
  TrainOptions o;
  o.model = p;
  o.data.path = text;
  o.data.seq_len = 128;
  o.data.max_validation_windows = 32;
  o.out = tmp / "demo";
  o.steps = 60;
  o.batch = 8;
  o.optimizer.lr = 2e-3f;
  o.warmup_steps = 5;
  o.eval_every = 60;
  o.backend = BackendKind::Cpu;
  const TrainSummary s = Trainer(o).run();
  ASSERT_TRUE(s.first_val_loss && s.last_val_loss);
  EXPECT_LT(*s.last_val_loss, 0.85 * *s.first_val_loss) << *s.first_val_loss << " -> " << *s.last_val_loss;
}

TEST(Trainer, ResumeRefusesAnotherConfig) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  TrainOptions o = small_run(tmp / "run");
  o.steps = 1;
  Trainer(o).run();
  o.resume = tmp / "run";
  o.lora.rank = 4;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { Trainer t(o); }), {"/lora", "expected", "found"}));
}

}  // namespace
}  // namespace pocketlora
