#include "host/data/batching.h"

#include <algorithm>
#include <cmath>

#include "host/core/error.h"
#include "host/util/splitmix64.h"

namespace pocketlora {

namespace {
// Unbiased draw in [0, bound): reject the top 2^64 mod bound values, then take the remainder.
std::uint64_t bounded(std::uint64_t& s, std::uint64_t bound) {
  const std::uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const std::uint64_t r = splitmix64(s);
    if (r >= threshold) return r % bound;
  }
}
}  // namespace

std::vector<Example> truncate_examples(std::vector<Example> examples, std::int64_t seq_len, PackStats* stats) {
  if (seq_len < 2) throw InvalidArgument("seq_len must be at least 2, got " + std::to_string(seq_len));
  const auto L = static_cast<std::size_t>(seq_len);
  for (auto& e : examples)
    if (e.ids.size() > L) {
      if (stats) ++stats->truncated;
      e.ids.resize(L);
      e.labels.resize(L);
      e.segment.resize(L);
      e.positions.resize(L);
    }
  return examples;
}

std::vector<Example> pack_examples(const std::vector<Example>& examples, std::int64_t seq_len, std::int32_t pad_id,
                                   PackStats* stats) {
  auto cut = truncate_examples(examples, seq_len, stats);
  const auto L = static_cast<std::size_t>(seq_len);
  std::vector<Example> windows;
  Example cur;
  std::int32_t doc = 0;
  std::size_t real = 0;
  auto flush = [&] {
    if (cur.ids.empty()) return;
    real += cur.ids.size();
    while (cur.ids.size() < L) {
      cur.ids.push_back(pad_id);
      cur.labels.push_back(kIgnoreLabel);
      cur.segment.push_back(-1);
      cur.positions.push_back(0);
    }
    windows.push_back(std::move(cur));
    cur = Example{};
    doc = 0;
  };
  for (auto& e : cut) {
    if (e.ids.empty()) continue;
    if (cur.ids.size() + e.ids.size() > L) flush();
    for (std::size_t t = 0; t < e.ids.size(); ++t) {
      cur.ids.push_back(e.ids[t]);
      cur.labels.push_back(t == 0 ? kIgnoreLabel : e.labels[t]);
      cur.segment.push_back(doc);
      cur.positions.push_back(static_cast<std::int32_t>(t));
    }
    ++doc;
  }
  flush();
  if (stats) {
    stats->windows = static_cast<std::int64_t>(windows.size());
    stats->fill = windows.empty() ? 0.0 : static_cast<double>(real) / static_cast<double>(windows.size() * L);
  }
  return windows;
}

std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  std::uint64_t s = seed;
  for (std::size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[bounded(s, i)]);
  return idx;
}

std::pair<std::vector<std::size_t>, std::vector<std::size_t>> split_indices(std::size_t n, double fraction,
                                                                            std::uint64_t seed) {
  if (!(fraction >= 0.0 && fraction < 1.0))
    throw InvalidArgument("validation fraction must be in [0, 1), got " + std::to_string(fraction));
  auto idx = shuffled_indices(n, seed);
  const auto nval = static_cast<std::size_t>(std::llround(static_cast<double>(n) * fraction));
  std::vector<std::size_t> val(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(nval));
  std::vector<std::size_t> train(idx.begin() + static_cast<std::ptrdiff_t>(nval), idx.end());
  return {train, val};
}

}  // namespace pocketlora
