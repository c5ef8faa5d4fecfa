// TrainStepEngine (host/train/step_engine.h) draws each micro-batch's LoRA dropout mask from (seed, step,
// micro-batch) written before the recorded step runs: with lr 0 (the adapter does not move) the same batch gives
// another loss at another step and the same loss at the same step again — what a resumed run relies on.
#include <gtest/gtest.h>

#include "common/test_data.h"
#include "host/model/llama_model.h"
#include "host/ref/cpu_backend.h"
#include "host/train/step_engine.h"
#include "host/util/splitmix64.h"
#include "train/random_token_batch.h"

namespace pocketlora {
namespace {

constexpr std::int64_t kBatch = 2, kSeq = 16;

void loss_at_steps(float dropout, const std::vector<std::int64_t>& steps, std::vector<double>& losses) {
  const LlamaModel m = load_llama_model(test::data_path("models/stories260K/stories260K.bin"), BaseQuant::Nf4);
  LoraConfig c;
  c.dropout = dropout;
  LoraAdapter ad = init_lora_adapter(m.config, m.rope_layout, c, 1);
  std::uint64_t s = 9;  // a nonzero B, so that the dropped LoRA input changes the loss
  for (auto& mod : ad.modules)
    for (std::int64_t i = 0; i < mod.b.numel(); ++i)
      mod.b.data<float>()[i] = static_cast<float>((static_cast<double>(splitmix64(s) >> 11) * 0x1.0p-53 - 0.5) * 0.2);
  ref::CpuBackend be;
  StepEngineOptions o;
  o.micro_batch = kBatch;
  o.seq_len = kSeq;
  o.dropout_seed = 42;
  TrainStepEngine engine(be, m, ad, o);
  const TokenBatch b = test::random_token_batch(kBatch, kSeq, 3);
  for (const std::int64_t step : steps) losses.push_back(engine.step({b}, /*lr=*/0.0, step).loss);
}

TEST(TrainStepEngine, DropoutMaskFollowsTheStepNumber) {
  POCKETLORA_REQUIRE_DATA(path, "models/stories260K/stories260K.bin");
  std::vector<double> with, without;
  loss_at_steps(0.3f, {1, 2, 1}, with);
  EXPECT_NE(with[0], with[1]) << "step 2 must draw another mask";
  EXPECT_EQ(with[0], with[2]) << "step 1 again must draw step 1's mask";
  loss_at_steps(0.0f, {1, 2}, without);
  EXPECT_EQ(without[0], without[1]);
  EXPECT_NE(with[0], without[0]);
}

}  // namespace
}  // namespace pocketlora
