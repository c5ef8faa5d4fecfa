// Validation loss on Alpaca data (host/eval/validation_loss.h): the windows training builds (prompt masked), scored
// by the step engine, against the mean f64 NLL of llama_forward_logits over the same target tokens.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "common/test_data.h"
#include "eval/eval_reference.h"
#include "host/core/error.h"
#include "host/data/dataset.h"
#include "host/eval/validation_loss.h"
#include "host/ref/cpu_backend.h"
#include "host/tokenizer/tokenizer.h"

namespace pocketlora {
namespace {

TEST(EvalValidationLoss, AlpacaMeanLossOverResponseTokens) {
  POCKETLORA_REQUIRE_DATA(model_path, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(tok_path, "models/stories260K/tok512.bin");
  const LlamaModel model = load_llama_model(model_path);
  const auto tok = load_tokenizer(tok_path);
  test::TempDir tmp;
  std::ofstream(tmp / "a.json") << R"([
    {"instruction": "Tell a story.", "input": "", "output": "Once upon a time, there was a cat."},
    {"instruction": "Say it.", "input": "A dog", "output": "The dog was happy and ran to the park."},
    {"instruction": "Go", "input": "", "output": "Lily saw a big tree."}])";
  TrainDataOptions o;
  o.path = tmp / "a.json";
  o.format = DataFormat::Alpaca;
  o.seq_len = 256;
  o.pack = false;
  o.validation_fraction = 0;
  const TrainData data(*tok, o, model.config.max_seq_len, model.config.vocab_size);
  ASSERT_EQ(data.train().size(), 3u);

  ref::CpuBackend be;
  StepEngineOptions eo;
  eo.micro_batch = 2;
  eo.seq_len = 256;
  TrainStepEngine engine(be, model, LoraAdapter{}, eo);
  const ValidationLossResult r = validation_loss(engine, data);

  // Independent: each example's tokens (windows hold no padding) through the plain forward; labels[t] scores
  // logits[t - 1] where it is not ignored.
  BackendLlama w = upload_llama(be, model);
  double sum = 0;
  std::int64_t count = 0;
  for (const Example& ex : data.train()) {
    const std::size_t n = ex.ids.size();
    ASSERT_LE(n, 256u);
    const std::vector<std::int32_t>& ids = ex.ids;
    const auto nll = test::reference_nll(be, w, ids, 1);
    for (std::size_t t = 1; t < n; ++t)
      if (ex.labels[t] != kIgnoreLabel) {
        sum += nll[t - 1];
        ++count;
      }
  }
  ASSERT_GT(count, 20);
  EXPECT_EQ(r.targets, count);
  EXPECT_EQ(r.records, 3);
  EXPECT_NEAR(r.loss, sum / static_cast<double>(count), 1e-5);
  EXPECT_NEAR(r.ppl, std::exp(sum / static_cast<double>(count)), 1e-4 * r.ppl);

  TrainDataOptions split = o;
  split.validation_fraction = 0.5;
  const TrainData halves(*tok, split, model.config.max_seq_len, model.config.vocab_size);
  EXPECT_THROW(validation_loss(engine, halves), InvalidArgument);
}

}  // namespace
}  // namespace pocketlora
