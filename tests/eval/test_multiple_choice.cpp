// Multiple choice by log-likelihood (host/eval/multiple_choice.h) on stories260K: a tiny JSONL written here, each
// choice's log-likelihood checked against the independent f64 log-softmax of llama_forward_logits, acc / acc_norm
// against the argmaxes of those; and the errors for bad records, naming the line.
#include <gtest/gtest.h>

#include <fstream>

#include "common/test_data.h"
#include "eval/eval_reference.h"
#include "host/core/error.h"
#include "host/eval/multiple_choice.h"
#include "host/ref/cpu_backend.h"
#include "host/tokenizer/tokenizer.h"

namespace pocketlora {
namespace {

void write_file(const std::filesystem::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

std::string error_of(const std::filesystem::path& p) {
  try {
    read_choice_questions(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(MultipleChoiceData, BadRecordsNameTheLine) {
  test::TempDir tmp;
  const auto p = tmp / "q.jsonl";
  const std::string good = R"({"question": "Q", "choices": ["a", "b"], "answer": 1})";
  auto check = [&](const std::string& bad, const std::string& want) {
    write_file(p, good + "\n\n" + bad + "\n");
    const std::string msg = error_of(p);
    EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find(want), std::string::npos) << msg;
  };
  check(R"({"question": "Q", "choices": ["a", "b"], "answer": 2})", "answer 2 is not an index of the 2 choices");
  check(R"({"question": "Q", "choices": ["a"], "answer": 0})", "1 choice(s), at least 2 expected");
  check(R"({"question": "Q", "choices": ["a", 3], "answer": 0})", "'choices[1]': expected string");
  check(R"({"choices": ["a", "b"], "answer": 0})", "question");
  check(R"({"question": "Q", "choices": "ab", "answer": 0})", "'choices': expected an array");
  check(R"({"question": "Q", "choices": ["a", "b"], "answer": "0"})", "answer");
  check(R"({"question": "Q", "choices": ["a", "b"])", "not JSON");
  write_file(p, "\n \n");
  EXPECT_NE(error_of(p).find("holds no question"), std::string::npos);
  write_file(p, good + "\n");
  const auto q = read_choice_questions(p);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].choices, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(q[0].answer, 1);
  EXPECT_EQ(code_points("caf\xc3\xa9"), 4);  // lm-eval's len(str): é is one code point, two bytes
}

TEST(EvalMultipleChoice, ScoresMatchIndependentLogLikelihoods) {
  POCKETLORA_REQUIRE_DATA(model_path, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(tok_path, "models/stories260K/tok512.bin");
  const LlamaModel model = load_llama_model(model_path);
  const auto tok = load_tokenizer(tok_path);
  // lm-eval's _encode_pair: a trailing space of the question belongs to the continuation.
  EXPECT_EQ(encode_choice_pair(*tok, "Lily went to the ", "park"),
            encode_choice_pair(*tok, "Lily went to the", " park"));

  test::TempDir tmp;
  write_file(
      tmp / "q.jsonl",
      R"({"question": "Once upon a time, there was a little girl named Lily. She liked to", "choices": ["play outside.", "xq zzv.", "eat the moon and the sun."], "answer": 0})"
      "\n"
      R"({"question": "Tom had a big red ball. He threw the ball to his", "choices": ["friend.", "dog, who ran after it.", "qq"], "answer": 1})"
      "\n");
  const auto questions = read_choice_questions(tmp / "q.jsonl");
  constexpr std::int64_t kCtx = 64;
  ref::CpuBackend be;
  StepEngineOptions o;
  o.micro_batch = 2;  // 6 windows in 3 runs
  o.seq_len = kCtx;
  o.token_scores = true;
  TrainStepEngine engine(be, model, LoraAdapter{}, o);
  const MultipleChoiceResult r = multiple_choice(engine, *tok, questions);
  ASSERT_EQ(r.scores.size(), 2u);

  BackendLlama w = upload_llama(be, model);
  std::int64_t right = 0, right_norm = 0;
  for (std::size_t q = 0; q < questions.size(); ++q) {
    std::vector<double> ll, normed;
    for (std::size_t c = 0; c < questions[q].choices.size(); ++c) {
      // Tokens built here from the tokenizer directly: BOS, the question, then " " + choice as the whole
      // sequence tokenizes after the question's own tokens.
      const std::string& text = questions[q].question;
      const auto ctx = tok->encode(text, false);
      const auto whole = tok->encode(text + " " + questions[q].choices[c], false);
      std::vector<std::int32_t> ids{*tok->bos_id()};
      ids.insert(ids.end(), whole.begin(), whole.end());
      const auto nll = test::reference_nll(be, w, ids, 1 + ctx.size());
      double sum = 0;
      for (double v : nll) sum -= v;
      EXPECT_EQ(r.scores[q].tokens[c], static_cast<std::int64_t>(nll.size())) << q << "," << c;
      // f32 forwards on both sides: ~1e-6 per token; 1e-4 absolute on a sum of a few tokens.
      EXPECT_NEAR(r.scores[q].loglik[c], sum, 1e-4) << q << "," << c;
      ll.push_back(sum);
      normed.push_back(sum / static_cast<double>(questions[q].choices[c].size()));  // ASCII: bytes = code points
    }
    const auto pred = std::max_element(ll.begin(), ll.end()) - ll.begin();
    const auto pred_norm = std::max_element(normed.begin(), normed.end()) - normed.begin();
    EXPECT_EQ(r.scores[q].pred, pred);
    EXPECT_EQ(r.scores[q].pred_norm, pred_norm);
    right += pred == questions[q].answer;
    right_norm += pred_norm == questions[q].answer;
  }
  EXPECT_DOUBLE_EQ(r.acc, static_cast<double>(right) / 2);
  EXPECT_DOUBLE_EQ(r.acc_norm, static_cast<double>(right_norm) / 2);
}

}  // namespace
}  // namespace pocketlora
