// `pocketlora generate` end to end on stories260K (CPU backend): greedy text from an empty prompt is run.c's 200
// tokens; adapters written here as PEFT directories apply as they should (B = 0 or scale 0: the base text; a random
// B: another text); a seed repeats its sample; a prompt + max tokens past the context is refused naming it.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "common/run_cli.h"
#include "common/test_data.h"
#include "host/adapters/peft_export.h"
#include "host/model/llama_model.h"
#include "host/tokenizer/tokenizer.h"
#include "host/train/lora_adapter.h"

namespace pocketlora {
namespace {

using test::run_cli;

// A rank-4 adapter on every linear of the model, B uniform in [-b, b] (0: untrained), as a PEFT directory.
void write_adapter(const std::filesystem::path& dir, const LlamaModel& m, float b) {
  LoraConfig cfg;
  cfg.rank = 4;
  cfg.alpha = 8;
  const LoraAdapter a = init_lora_adapter(m.config, m.rope_layout, cfg, 5);
  PeftAdapter p;
  p.config = {cfg.rank, cfg.alpha, 0.0, false, {"q", "k", "v", "o", "gate", "up", "down"}, "stories260K"};
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-b, b);
  for (const auto& mod : a.modules) {
    Tensor bt = mod.b.clone();
    for (std::int64_t i = 0; i < bt.numel(); ++i) bt.data<float>()[i] = b == 0 ? 0.0f : u(rng);
    p.tensors.emplace_back(mod.tensor_name('A'), mod.a);
    p.tensors.emplace_back(mod.tensor_name('B'), bt);
  }
  write_peft_adapter(dir, p, m.config, m.rope_layout);
}

TEST(GenerateCli, GreedyTextAdaptersSeedsAndContext) {
  POCKETLORA_REQUIRE_DATA(model, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(ids_path, "models/stories260K/expected/runc_t0_n200.ids.json");
  const std::string base = "generate --model " + model.string() + " --backend cpu --quiet --prompt ''";

  // Greedy from BOS: the text of run.c's ids.
  const auto ids = nlohmann::json::parse(std::ifstream(ids_path)).at("tokens_bos_plus_200").get<std::vector<std::int32_t>>();
  const auto tok = load_tokenizer(model.parent_path() / "tok512.bin");
  const auto greedy = run_cli(base + " --max-tokens 200", "2>/dev/null");
  ASSERT_EQ(greedy.rc, 0) << greedy.out;
  EXPECT_EQ(greedy.out, tok->decode(std::vector<std::int32_t>(ids.begin() + 1, ids.end())) + "\n");

  test::TempDir tmp;
  const LlamaModel m = load_llama_model(model);
  write_adapter(tmp / "untrained", m, 0.0f);
  write_adapter(tmp / "random", m, 0.1f);
  const std::string short_run = base + " --max-tokens 40";
  const auto plain = run_cli(short_run, "2>/dev/null");
  ASSERT_EQ(plain.rc, 0) << plain.out;
  EXPECT_EQ(run_cli(short_run + " --adapter " + (tmp / "untrained").string(), "2>/dev/null").out, plain.out);
  EXPECT_EQ(run_cli(short_run + " --adapter " + (tmp / "random").string() + ":0", "2>/dev/null").out, plain.out);
  const auto adapted = run_cli(short_run + " --adapter " + (tmp / "random").string(), "2>/dev/null");
  ASSERT_EQ(adapted.rc, 0) << adapted.out;
  EXPECT_NE(adapted.out, plain.out);
  // Both adapters at once: the untrained one adds nothing.
  EXPECT_EQ(run_cli(short_run + " --adapter " + (tmp / "random").string() + " --adapter " +
                        (tmp / "untrained").string() + ":2.5",
                    "2>/dev/null")
                .out,
            adapted.out);

  const std::string sampled = short_run + " --temperature 0.9 --top-k 40 --top-p 0.9";
  const auto s1 = run_cli(sampled + " --seed 7", "2>/dev/null"), s2 = run_cli(sampled + " --seed 7", "2>/dev/null");
  const auto s3 = run_cli(sampled + " --seed 8", "2>/dev/null");
  EXPECT_EQ(s1.out, s2.out);
  EXPECT_NE(s1.out, s3.out);

  // The timing line goes to stderr.
  EXPECT_NE(run_cli(short_run.substr(0, short_run.find(" --quiet")) + " --prompt '' --max-tokens 5").out.find("decode"),
            std::string::npos);

  const auto too_long = run_cli(base + " --max-tokens 600");
  EXPECT_EQ(too_long.rc, 1);
  EXPECT_NE(too_long.out.find("context length of 512"), std::string::npos) << too_long.out;
}

}  // namespace
}  // namespace pocketlora
