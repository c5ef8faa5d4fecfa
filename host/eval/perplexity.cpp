#include "host/eval/perplexity.h"

#include <fmt/format.h>

#include <cmath>

#include "host/core/error.h"

namespace pocketlora {

std::vector<ScoredWindow> perplexity_windows(std::span<const std::int32_t> tokens, std::int64_t n_ctx,
                                             std::int64_t model_context, std::optional<std::int32_t> bos) {
  if (n_ctx < 3)
    throw InvalidArgument(
        fmt::format("perplexity: context {} is too short (at least 3, so that each chunk scores "
                    "n_ctx - 1 - n_ctx / 2 >= 1 tokens)",
                    n_ctx));
  if (n_ctx > model_context)
    throw InvalidArgument(
        fmt::format("perplexity: context {} is longer than the model's context length {}", n_ctx, model_context));
  const auto n = static_cast<std::int64_t>(tokens.size());
  if (n < 2 * n_ctx)
    throw InvalidArgument(
        fmt::format("perplexity: the text tokenizes to {} tokens; a context of {} needs at least {} "
                    "(2 x context, as llama-perplexity requires)",
                    n, n_ctx, 2 * n_ctx));
  std::vector<ScoredWindow> windows;
  for (std::int64_t c = 0; c < n / n_ctx; ++c) {
    ScoredWindow w;
    w.ids.assign(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    if (bos) w.ids[0] = *bos;
    w.first = n_ctx / 2 + 1;  // the logits at n_ctx / 2 score token n_ctx / 2 + 1
    windows.push_back(std::move(w));
  }
  return windows;
}

PerplexityResult perplexity_from_nll(const std::vector<std::vector<double>>& chunk_nll) {
  PerplexityResult r;
  double sum = 0, sum2 = 0;
  for (const auto& chunk : chunk_nll)
    for (double v : chunk) {
      sum += v;
      sum2 += v * v;
      ++r.scored_tokens;
    }
  if (r.scored_tokens < 2)
    throw InvalidArgument(fmt::format("perplexity: {} scored tokens, at least 2 needed", r.scored_tokens));
  r.chunks = static_cast<std::int64_t>(chunk_nll.size());
  const auto count = static_cast<double>(r.scored_tokens);
  r.mean_nll = sum / count;
  r.ppl = std::exp(r.mean_nll);
  const double var = sum2 / count - r.mean_nll * r.mean_nll;
  r.ppl_error = var > 0 ? std::sqrt(var / (count - 1)) * r.ppl : 0.0;
  return r;
}

PerplexityResult text_perplexity(TrainStepEngine& engine, std::span<const std::int32_t> tokens, std::int64_t n_ctx,
                                 std::int64_t model_context, std::optional<std::int32_t> bos) {
  if (engine.options().seq_len != n_ctx)
    throw InvalidArgument(fmt::format("perplexity: the engine runs windows of {} tokens, the context is {}",
                                      engine.options().seq_len, n_ctx));
  const auto windows = perplexity_windows(tokens, n_ctx, model_context, bos);
  PerplexityResult r = perplexity_from_nll(score_windows(engine, windows, bos.value_or(0)));
  r.text_tokens = static_cast<std::int64_t>(tokens.size());
  return r;
}

}  // namespace pocketlora
