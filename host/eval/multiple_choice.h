#pragma once
// Multiple choice by log-likelihood, as lm-evaluation-harness scores multiple_choice tasks: for each choice, the
// sum of the log-probabilities of the continuation " " + choice (lm-eval's target_delimiter) given the question;
// acc: the most likely choice is the answer; acc_norm: the same after dividing each log-likelihood by the length
// of the choice text (lm-eval's len(choice) of a Python str: Unicode code points, which are the bytes for ASCII).
// Ties go to the first choice (numpy argmax).
// Data: JSONL, one {"question": str, "choices": [str, ...], "answer": int} per line (blank lines skipped).
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "host/eval/window_scores.h"

namespace pocketlora {

class Tokenizer;

struct ChoiceQuestion {
  std::string question;
  std::vector<std::string> choices;  // at least 2
  std::int64_t answer = 0;           // index into choices
  std::int64_t line = 0;             // 1-based line in the file, for messages
};

// FormatError naming the file and line for malformed JSON, a missing or mistyped field, fewer than 2 choices or
// an answer out of range; InvalidArgument for a file with no question.
std::vector<ChoiceQuestion> read_choice_questions(const std::filesystem::path& path);

// lm-eval's _encode_pair: trailing spaces of the context move to the continuation; the continuation's tokens are
// those of context + continuation after the context's own token count (no BOS in either).
std::pair<std::vector<std::int32_t>, std::vector<std::int32_t>> encode_choice_pair(const Tokenizer& tok,
                                                                                   std::string context,
                                                                                   std::string continuation);

std::int64_t code_points(const std::string& utf8);

struct ChoiceScore {
  std::vector<double> loglik;        // per choice
  std::vector<std::int64_t> tokens;  // continuation tokens per choice
  std::int64_t pred = 0, pred_norm = 0;
};

struct MultipleChoiceResult {
  std::int64_t questions = 0;
  double acc = 0, acc_norm = 0;
  std::vector<ChoiceScore> scores;  // per question
};

// The windows: BOS (when the vocabulary has one) + context + continuation, cut from the left to `n_ctx` tokens
// (lm-eval keeps the end of a long input too); InvalidArgument naming the line when the continuation alone does
// not fit.
std::vector<ScoredWindow> choice_windows(const Tokenizer& tok, const std::vector<ChoiceQuestion>& questions,
                                         std::int64_t n_ctx);

// Scores every (question, choice) on the engine (seq_len = the context) and aggregates acc / acc_norm.
MultipleChoiceResult multiple_choice(TrainStepEngine& engine, const Tokenizer& tok,
                                     const std::vector<ChoiceQuestion>& questions);

}  // namespace pocketlora
