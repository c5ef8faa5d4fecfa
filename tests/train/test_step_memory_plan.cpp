// The step's memory plan (host/train/step_engine.h plan_step_memory, recorded on a PlanningBackend: nothing is
// allocated) with and without gradient checkpointing, and the trainer's choice under a limit — --max-memory or the
// device's memory budget (Backend::memory_budget), whichever is smaller: checkpointing before a smaller
// micro-batch; a run then measures no more than the limit; a limit nothing fits is refused before any allocation.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/model/llama_model.h"
#include "host/train/step_engine.h"
#include "host/train/trainer.h"
#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/ops/vulkan_backend.h"
#endif

namespace pocketlora {
namespace {

namespace fs = std::filesystem;

LoraAdapter all_targets(const LlamaModel& m, std::int64_t rank) {
  LoraConfig c;
  c.rank = rank;
  c.alpha = 2.0f * static_cast<float>(rank);
  return init_lora_adapter(m.config, m.rope_layout, c, 1);
}

// What one layer keeps for its backward besides its input x_in, counted from the config (f32): the two norms'
// outputs and rstd, q, k, v, the attention output and lse, x_mid, gate, up, swiglu and each linear's LoRA T.
std::uint64_t layer_intermediate_bytes(const LlamaConfig& c, std::int64_t tokens, std::int64_t rank) {
  const std::int64_t q_dim = c.n_heads * c.head_dim;
  const std::int64_t per_token = 3 * c.dim + 2 + 2 * q_dim + 2 * c.kv_dim() + c.n_heads + 3 * c.hidden_dim + 7 * rank;
  return static_cast<std::uint64_t>(per_token * tokens) * 4;
}

struct Plans {
  StepMemoryPlan plain, ckpt;
};

Plans plan_both(const LlamaModel& m, const LoraAdapter& ad, std::int64_t batch, std::int64_t seq) {
  StepEngineOptions o;
  o.micro_batch = batch;
  o.seq_len = seq;
  Plans p;
  p.plain = plan_step_memory(m, ad, o);
  o.checkpointing = true;
  p.ckpt = plan_step_memory(m, ad, o);
  return p;
}

void print(const char* what, const Plans& p) {
  std::printf(
      "%s: resident %.1f MiB; step arena %.1f MiB without checkpointing, %.1f MiB with; peak %.1f -> %.1f MiB\n", what,
      p.plain.resident_bytes / 1048576.0, p.plain.step_arena_bytes / 1048576.0, p.ckpt.step_arena_bytes / 1048576.0,
      p.plain.peak_bytes() / 1048576.0, p.ckpt.peak_bytes() / 1048576.0);
}

// Checkpointing changes only the step's temporaries, and saves at least the intermediates of all but one layer
// less one layer's worth (the shared set lives through the whole step; the planner's packing is not optimal).
void expect_checkpointing_saves_layers(const Plans& p, const LlamaConfig& c, std::int64_t tokens, std::int64_t rank) {
  EXPECT_EQ(p.ckpt.resident_bytes, p.plain.resident_bytes);
  ASSERT_LT(p.ckpt.step_arena_bytes, p.plain.step_arena_bytes);
  const std::uint64_t layer = layer_intermediate_bytes(c, tokens, rank);
  EXPECT_GE(p.plain.step_arena_bytes - p.ckpt.step_arena_bytes, static_cast<std::uint64_t>(c.n_layers - 2) * layer);
}

TEST(StepMemoryPlan, CheckpointingShrinksStories260KStep) {
  POCKETLORA_REQUIRE_DATA(path, "models/stories260K/stories260K.bin");
  const LlamaModel m = load_llama_model(path, BaseQuant::Nf4);
  const Plans p = plan_both(m, all_targets(m, 8), 8, 128);
  print("stories260K NF4, r=8 all targets, 8 x 128", p);
  expect_checkpointing_saves_layers(p, m.config, 8 * 128, 8);
}

// TinyLlama-1.1B's shapes with an f32 base made of views of one small buffer: the planning backend records sizes
// and never reads weight bytes, so the 4.4 GB model is planned without existing.
LlamaModel tinyllama_shaped_model() {
  static float no_data[2][1];
  LlamaModel m;
  auto& c = m.config;
  c.dim = 2048;
  c.hidden_dim = 5632;
  c.n_layers = 22;
  c.n_heads = 32;
  c.n_kv_heads = 4;
  c.head_dim = 64;
  c.vocab_size = 32000;
  c.max_seq_len = 2048;
  auto shaped = [](int which, const Shape& s) { return Tensor::view(no_data[which], s, DType::F32); };
  m.tok_embeddings = shaped(0, {c.vocab_size, c.dim});
  m.output = shaped(1, {c.vocab_size, c.dim});  // untied: another address
  m.norm = shaped(0, {c.dim});
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    LlamaLayer L;
    L.attn_norm = L.ffn_norm = shaped(0, {c.dim});
    L.wq.plain = L.wo.plain = shaped(0, {c.dim, c.dim});
    L.wk.plain = L.wv.plain = shaped(0, {c.kv_dim(), c.dim});
    L.w_gate.plain = L.w_up.plain = shaped(0, {c.hidden_dim, c.dim});
    L.w_down.plain = shaped(0, {c.dim, c.hidden_dim});
    m.layers.push_back(std::move(L));
  }
  return m;
}

TEST(StepMemoryPlan, CheckpointingShrinksTinyLlamaShapedStep) {
  const LlamaModel m = tinyllama_shaped_model();
  const Plans p = plan_both(m, all_targets(m, 16), 1, 512);
  print("TinyLlama-1.1B shapes, f32 base, r=16 all targets, 1 x 512", p);
  expect_checkpointing_saves_layers(p, m.config, 512, 16);
}

TEST(StepMemoryPlan, F16TablesHalveTheEmbeddingAndHeadBytes) {
  // TinyLlama's untied embedding and head, [32000, 2048] each: 2 x 250 MiB in f32, 2 x 125 MiB in f16; nothing
  // else of the plan changes (activations, LoRA tensors and optimizer state stay f32).
  const LlamaModel m = tinyllama_shaped_model();
  const LoraAdapter ad = all_targets(m, 16);
  StepEngineOptions o;
  o.seq_len = 512;
  o.table_dtype = TableDtype::F32;
  const StepMemoryPlan f32 = plan_step_memory(m, ad, o);
  o.table_dtype = TableDtype::F16;
  const StepMemoryPlan f16 = plan_step_memory(m, ad, o);
  const std::uint64_t halved = 2ull * 32000 * 2048 * 2;
  EXPECT_EQ(f32.resident_bytes - f16.resident_bytes, halved);
  EXPECT_EQ(f32.step_arena_bytes, f16.step_arena_bytes);
  // Auto: f16 above 128 MiB of f32 tables (these 500 MiB), f32 for stories260K's 128 KiB; f64 models stay as loaded.
  EXPECT_EQ(resolve_table_dtype(TableDtype::Auto, m), DType::F16);
  LlamaModel small = m;
  small.tok_embeddings = Tensor::zeros({512, 64});
  small.output = small.tok_embeddings;
  EXPECT_EQ(resolve_table_dtype(TableDtype::Auto, small), DType::F32);
  EXPECT_EQ(resolve_table_dtype(TableDtype::F16, small), DType::F16);
  small.tok_embeddings = Tensor::zeros({512, 64}, DType::F64);
  EXPECT_EQ(resolve_table_dtype(TableDtype::F16, small), std::nullopt);
  EXPECT_TRUE(test::mentions(test::error_of<InvalidArgument>([] { parse_table_dtype("bf16"); }),
                             {"'bf16'", "f32, f16 or auto"}));
}

TrainOptions stories_options(CheckpointingMode mode, std::uint64_t max_memory) {
  TrainOptions o;
  o.model = test::data_path("models/stories260K/stories260K.bin");
  o.tokenizer = test::data_path("models/stories260K/tok512.bin");
  o.data.path = test::data_path("datasets/tinystories_sample.txt");
  o.data.seq_len = 64;
  o.out = fs::temp_directory_path() / "pocketlora-plan-test-unused";
  o.batch = 8;
  o.steps = 1;
  o.checkpointing = mode;
  o.max_memory = max_memory;
  return o;
}

TEST(TrainerMemoryPlan, MaxMemoryTurnsOnCheckpointingBeforeShrinkingTheMicroBatch) {
  POCKETLORA_REQUIRE_DATA(model, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(tok, "models/stories260K/tok512.bin");
  POCKETLORA_REQUIRE_DATA(data, "datasets/tinystories_sample.txt");
  const MemoryReport off = Trainer(stories_options(CheckpointingMode::Off, 0)).plan_memory();
  const MemoryReport on = Trainer(stories_options(CheckpointingMode::On, 0)).plan_memory();
  EXPECT_FALSE(off.checkpointing);
  EXPECT_TRUE(on.checkpointing);
  EXPECT_EQ(on.micro_batch, 8);
  ASSERT_LT(on.planned_peak_bytes, off.planned_peak_bytes);

  // No limit, or one the plain step fits: no checkpointing.
  const MemoryReport free_auto = Trainer(stories_options(CheckpointingMode::Auto, 0)).plan_memory();
  EXPECT_FALSE(free_auto.checkpointing);
  EXPECT_EQ(free_auto.micro_batch, 8);
  EXPECT_FALSE(Trainer(stories_options(CheckpointingMode::Auto, off.planned_peak_bytes)).plan_memory().checkpointing);
  // A limit only the checkpointed step fits: Auto keeps the micro-batch and checkpoints; Off halves it.
  const MemoryReport tight = Trainer(stories_options(CheckpointingMode::Auto, on.planned_peak_bytes)).plan_memory();
  EXPECT_TRUE(tight.checkpointing);
  EXPECT_EQ(tight.micro_batch, 8);
  EXPECT_EQ(tight.grad_accum, 1);
  const MemoryReport halved = Trainer(stories_options(CheckpointingMode::Off, on.planned_peak_bytes)).plan_memory();
  EXPECT_FALSE(halved.checkpointing);
  EXPECT_LT(halved.micro_batch, 8);
  EXPECT_EQ(halved.micro_batch * halved.grad_accum, 8);
  // Nothing fits: the error names the smallest step tried, checkpointed.
  EXPECT_TRUE(test::mentions(test::error_of<OutOfMemoryError>([&] {
                               Trainer(stories_options(CheckpointingMode::Auto, on.resident_bytes)).plan_memory();
                             }),
                             {"micro-batch 1 x 64 tokens, checkpointing on"}));
}

// A run at the limit the plan was fitted to holds no more than it: on the CPU backend the "device" memory is the
// host memory of the step (weights, NF4 base, adapter, optimizer state, the step arena: Backend::memory_in_use).
TEST(TrainerMemoryPlan, ARunUnderMaxMemoryMeasuresNoMoreThanIt) {
  POCKETLORA_REQUIRE_DATA(model, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(tok, "models/stories260K/tok512.bin");
  POCKETLORA_REQUIRE_DATA(data, "datasets/tinystories_sample.txt");
  const MemoryReport on = Trainer(stories_options(CheckpointingMode::On, 0)).plan_memory();
  test::TempDir tmp;
  TrainOptions o = stories_options(CheckpointingMode::Auto, on.planned_peak_bytes);
  o.out = tmp / "run";
  Trainer t(o);
  EXPECT_TRUE(t.plan_memory().checkpointing);
  EXPECT_EQ(t.plan_memory().limit_bytes, on.planned_peak_bytes);
  EXPECT_EQ(t.plan_memory().limit_source, "--max-memory");
  const TrainSummary s = t.run();
  EXPECT_EQ(s.steps_done, 1);
  EXPECT_GT(s.memory.measured_device_bytes, 0u);
  EXPECT_LE(s.memory.measured_device_bytes, o.max_memory);
}

#if POCKETLORA_HAS_VULKAN
std::unique_ptr<Backend> vulkan_on(vk::Device& dev) { return std::make_unique<ops::VulkanBackend>(dev); }

// The device's budget (here forced small through the profile: memory.heap_budget_mib, the one way a test sets what
// VK_EXT_memory_budget reports) is a limit like --max-memory: the plan turns checkpointing on to fit it, the run
// measures no more, and the smaller of the two limits wins.
TEST(VulkanTrainerMemoryBudget, ASmallDeviceBudgetTurnsOnCheckpointingAndTheRunFitsIt) {
  POCKETLORA_REQUIRE_GPU();
  POCKETLORA_REQUIRE_DATA(model, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(tok, "models/stories260K/tok512.bin");
  POCKETLORA_REQUIRE_DATA(data, "datasets/tinystories_sample.txt");
  test::ValidationWatch watch;
  vk::Device* shared = test::GpuTest::shared_device(nullptr);
  auto vulkan_options = [](CheckpointingMode mode, std::uint64_t max_memory) {
    TrainOptions o = stories_options(mode, max_memory);
    o.backend = BackendKind::Vulkan;
    o.precision = Precision::F32;
    return o;
  };
  // The device's own budget (lavapipe: its heap) leaves this small run alone.
  const MemoryReport off = Trainer(vulkan_options(CheckpointingMode::Auto, 0), vulkan_on(*shared)).plan_memory();
  const MemoryReport on = Trainer(vulkan_options(CheckpointingMode::On, 0), vulkan_on(*shared)).plan_memory();
  EXPECT_FALSE(off.checkpointing);
  EXPECT_GT(off.limit_bytes, off.planned_peak_bytes);
  EXPECT_NE(off.limit_source.find("vulkan memory budget"), std::string::npos) << off.limit_source;
  constexpr std::uint64_t kMiB = 1 << 20;
  const std::uint64_t budget_mib = (on.planned_peak_bytes + kMiB - 1) / kMiB;
  ASSERT_LT(budget_mib * kMiB, off.planned_peak_bytes) << "the checkpointed and plain plans are within 1 MiB";

  test::ProfileOverrideDevice small("\"memory.heap_budget_mib\": " + std::to_string(budget_mib) +
                                    ", \"memory.budget_margin_mib\": 0");
  test::TempDir tmp;
  TrainOptions o = vulkan_options(CheckpointingMode::Auto, 0);
  o.out = tmp / "run";
  Trainer t(o, vulkan_on(small.dev()));
  const MemoryReport& plan = t.plan_memory();
  EXPECT_TRUE(plan.checkpointing);
  EXPECT_EQ(plan.micro_batch, 8);
  EXPECT_EQ(plan.limit_bytes, budget_mib * kMiB);
  EXPECT_TRUE(test::mentions(plan.limit_source, {"vulkan memory budget", "memory.heap_budget_mib"}));
  const TrainSummary s = t.run();
  EXPECT_EQ(s.steps_done, 1);
  EXPECT_LE(s.memory.measured_device_bytes, plan.limit_bytes);
  EXPECT_LE(small.dev().allocated_bytes(), plan.limit_bytes);

  // --max-memory below the budget is the limit; above it, the budget stays.
  TrainOptions tighter = vulkan_options(CheckpointingMode::Auto, budget_mib * kMiB - 1);
  EXPECT_EQ(Trainer(tighter, vulkan_on(small.dev())).plan_memory().limit_source, "--max-memory");
  TrainOptions looser = vulkan_options(CheckpointingMode::Auto, 4 * budget_mib * kMiB);
  EXPECT_EQ(Trainer(looser, vulkan_on(small.dev())).plan_memory().limit_bytes, budget_mib * kMiB);
}

// A budget nothing fits is refused by the plan — naming the planned bytes and the budget — before the backend has
// allocated anything.
TEST(VulkanTrainerMemoryBudget, ABudgetNothingFitsIsRefusedBeforeAnyAllocation) {
  POCKETLORA_REQUIRE_GPU();
  POCKETLORA_REQUIRE_DATA(model, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(tok, "models/stories260K/tok512.bin");
  POCKETLORA_REQUIRE_DATA(data, "datasets/tinystories_sample.txt");
  test::ProfileOverrideDevice tiny(R"("memory.heap_budget_mib": 1, "memory.budget_margin_mib": 0)");
  TrainOptions o = stories_options(CheckpointingMode::Auto, 0);
  o.backend = BackendKind::Vulkan;
  const std::uint64_t before = tiny.dev().allocated_bytes();
  const std::string msg = test::error_of<OutOfMemoryError>([&] { Trainer(o, vulkan_on(tiny.dev())); });
  EXPECT_TRUE(test::mentions(msg, {"vulkan memory budget (profile memory.heap_budget_mib 1 - margin 0 MiB)",
                                   "1048576 bytes allowed", "planned at", "micro-batch 1 x 64 tokens"}))
      << msg;
  EXPECT_EQ(tiny.dev().allocated_bytes(), before);
}
#endif

}  // namespace
}  // namespace pocketlora
