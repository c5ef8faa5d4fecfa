// `pocketlora eval` as a user runs it: perplexity JSON on stories260K (chunk count from the token count), and the
// errors for a too-short text, a context beyond the model's and a bad multiple-choice record.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/run_cli.h"
#include "common/test_data.h"

namespace pocketlora {
namespace {

TEST(EvalCli, PerplexityJsonAndErrors) {
  POCKETLORA_REQUIRE_DATA(model, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(text, "datasets/tinystories_sample.txt");
  const std::string base = "eval --model " + model.string() + " --backend cpu ";
  const auto r = test::run_cli(base + "--data " + text.string() + " --ctx 64 --batch 4 --json", "2>/dev/null");
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["task"], "perplexity");
  EXPECT_EQ(j["chunks"].get<std::int64_t>(), j["text_tokens"].get<std::int64_t>() / 64);
  EXPECT_EQ(j["scored_tokens"].get<std::int64_t>(), j["chunks"].get<std::int64_t>() * (64 - 1 - 32));
  EXPECT_GT(j["ppl"].get<double>(), 1.0);
  EXPECT_GT(j["ppl_error"].get<double>(), 0.0);
  EXPECT_NEAR(j["ppl"].get<double>(), std::exp(j["mean_nll"].get<double>()), 1e-9 * j["ppl"].get<double>());

  test::TempDir tmp;
  std::ofstream(tmp / "short.txt") << "Once upon a time.";
  auto e = test::run_cli(base + "--data " + (tmp / "short.txt").string() + " --ctx 64");
  EXPECT_EQ(e.rc, 1);
  EXPECT_NE(e.out.find("a context of 64 needs at least 128"), std::string::npos) << e.out;
  e = test::run_cli(base + "--data " + text.string() + " --ctx 1024");
  EXPECT_EQ(e.rc, 1);
  EXPECT_NE(e.out.find("longer than the model's context length 512"), std::string::npos) << e.out;
  std::ofstream(tmp / "q.jsonl") << R"({"question": "Q", "choices": ["a", "b"], "answer": 5})"
                                 << "\n";
  e = test::run_cli(base + "--format choices --data " + (tmp / "q.jsonl").string());
  EXPECT_EQ(e.rc, 1);
  EXPECT_NE(e.out.find("line 1: answer 5"), std::string::npos) << e.out;
}

}  // namespace
}  // namespace pocketlora
