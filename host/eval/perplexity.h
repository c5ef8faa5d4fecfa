#pragma once
// Perplexity of a text by llama.cpp's llama-perplexity method (tools/perplexity/perplexity.cpp, perplexity()):
//   - the whole text is tokenized once, with BOS when the vocabulary has one (common_tokenize(..., add_special));
//   - it is cut into n_ctx-token chunks, the remainder dropped; at least 2 * n_ctx tokens are required;
//   - each chunk runs from position 0 with its first token replaced by BOS (when there is one);
//   - only the second half is scored: with first = n_ctx / 2, the logits at positions first .. n_ctx - 2 score the
//     tokens after them, n_ctx - 1 - first tokens per chunk;
//   - PPL = exp(mean NLL) over all scored tokens, and llama.cpp's "+/-": PPL * sqrt((mean(NLL^2) - mean(NLL)^2) /
//     (count - 1)), the standard error of the mean NLL carried through exp.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "host/eval/window_scores.h"

namespace pocketlora {

struct PerplexityResult {
  double ppl = 0, ppl_error = 0;  // exp(mean NLL) and llama.cpp's +/- estimate
  double mean_nll = 0;
  std::int64_t text_tokens = 0, chunks = 0, scored_tokens = 0;
};

// The chunks of `tokens` as scored windows. InvalidArgument when n_ctx < 3 (no scored token per chunk),
// n_ctx exceeds `model_context`, or the text has fewer than 2 * n_ctx tokens (llama-perplexity's own minimum).
std::vector<ScoredWindow> perplexity_windows(std::span<const std::int32_t> tokens, std::int64_t n_ctx,
                                             std::int64_t model_context, std::optional<std::int32_t> bos);

// PPL and its +/- from the NLL of every scored token (at least 2).
PerplexityResult perplexity_from_nll(const std::vector<std::vector<double>>& chunk_nll);

// The whole method: windows, scores on `engine` (seq_len must be n_ctx), statistics.
PerplexityResult text_perplexity(TrainStepEngine& engine, std::span<const std::int32_t> tokens, std::int64_t n_ctx,
                                 std::int64_t model_context, std::optional<std::int32_t> bos);

}  // namespace pocketlora
