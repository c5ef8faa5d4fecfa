#include "host/eval/window_scores.h"

#include <fmt/format.h>

#include <algorithm>

#include "host/core/error.h"
#include "host/core/op/cross_entropy.h"

namespace pocketlora {

std::vector<std::vector<double>> score_windows(TrainStepEngine& engine, const std::vector<ScoredWindow>& windows,
                                               std::int32_t pad_id) {
  const std::int64_t batch = engine.options().micro_batch, seq = engine.options().seq_len;
  for (std::size_t w = 0; w < windows.size(); ++w) {
    const auto n = static_cast<std::int64_t>(windows[w].ids.size());
    if (n > seq) throw InvalidArgument(fmt::format("eval window {}: {} tokens, the context holds {}", w, n, seq));
    if (windows[w].first < 1 || windows[w].first >= n)
      throw InvalidArgument(
          fmt::format("eval window {}: scoring from token {} of {} (expected 1 .. {})", w, windows[w].first, n, n - 1));
  }
  std::vector<std::vector<double>> out;
  out.reserve(windows.size());
  for (std::size_t w0 = 0; w0 < windows.size(); w0 += static_cast<std::size_t>(batch)) {
    TokenBatch b;
    b.batch = batch;
    b.seq_len = seq;
    b.ids.assign(static_cast<std::size_t>(batch * seq), pad_id);
    b.positions.resize(b.ids.size());
    b.segments.assign(b.ids.size(), 0);
    b.targets.assign(b.ids.size(), kIgnoreIndex);
    const std::size_t n_here = std::min(windows.size() - w0, static_cast<std::size_t>(batch));
    for (std::size_t j = 0; j < b.ids.size(); ++j)
      b.positions[j] = static_cast<std::int32_t>(j % static_cast<std::size_t>(seq));
    for (std::size_t k = 0; k < n_here; ++k) {
      const ScoredWindow& win = windows[w0 + k];
      const std::size_t base = k * static_cast<std::size_t>(seq);
      std::copy(win.ids.begin(), win.ids.end(), b.ids.begin() + static_cast<std::ptrdiff_t>(base));
      // The logits at token t score token t + 1 (TokenBatch's shift).
      for (std::size_t t = static_cast<std::size_t>(win.first); t < win.ids.size(); ++t) {
        b.targets[base + t - 1] = win.ids[t];
        ++b.target_count;
      }
    }
    const std::vector<double> nll = engine.token_losses(b);
    for (std::size_t k = 0; k < n_here; ++k) {
      const ScoredWindow& win = windows[w0 + k];
      const std::size_t base = k * static_cast<std::size_t>(seq);
      out.emplace_back(nll.begin() + static_cast<std::ptrdiff_t>(base + static_cast<std::size_t>(win.first) - 1),
                       nll.begin() + static_cast<std::ptrdiff_t>(base + win.ids.size() - 1));
    }
  }
  return out;
}

}  // namespace pocketlora
