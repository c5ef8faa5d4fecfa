#include "host/infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "host/core/error.h"

namespace pocketlora {

void SamplingOptions::validate() const {
  if (!std::isfinite(temperature) || temperature < 0.0f)
    throw InvalidArgument("sampling: temperature " + std::to_string(temperature) + " — expected >= 0 (0: greedy)");
  if (top_k < 0) throw InvalidArgument("sampling: top_k " + std::to_string(top_k) + " — expected >= 0 (0: off)");
  if (!(top_p > 0.0f && top_p <= 1.0f))
    throw InvalidArgument("sampling: top_p " + std::to_string(top_p) + " — expected in (0, 1] (1: off)");
}

Sampler::Sampler(const SamplingOptions& opt) : opt_(opt), rng_(opt.seed) { opt_.validate(); }

std::int32_t greedy_token(std::span<const float> logits) {
  if (logits.empty()) throw InvalidArgument("greedy_token: empty logits");
  std::size_t best = 0;
  for (std::size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<std::int32_t>(best);
}

std::vector<std::pair<std::int32_t, double>> Sampler::distribution(std::span<const float> logits) const {
  if (logits.empty()) throw InvalidArgument("Sampler: empty logits");
  if (opt_.temperature == 0.0f) return {{greedy_token(logits), 1.0}};
  std::vector<std::pair<std::int32_t, double>> p(logits.size());
  double mx = -INFINITY;
  for (std::size_t i = 0; i < logits.size(); ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  if (!std::isfinite(mx)) throw InvalidArgument("Sampler: logits hold no finite maximum (NaN or infinity)");
  double sum = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double e = std::exp((static_cast<double>(logits[i]) - mx) / opt_.temperature);
    p[i] = {static_cast<std::int32_t>(i), e};
    sum += e;
  }
  for (auto& [id, pr] : p) pr /= sum;
  std::stable_sort(p.begin(), p.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (opt_.top_k > 0 && static_cast<std::size_t>(opt_.top_k) < p.size()) p.resize(static_cast<std::size_t>(opt_.top_k));
  if (opt_.top_p < 1.0f) {
    // Renormalised over what top-k kept, as the warpers chain; the token that reaches p is kept.
    double kept = 0, total = 0;
    for (const auto& e : p) total += e.second;
    std::size_t n = 0;
    while (n < p.size()) {
      kept += p[n++].second;
      if (kept >= static_cast<double>(opt_.top_p) * total) break;
    }
    p.resize(n);
  }
  double total = 0;
  for (const auto& e : p) total += e.second;
  for (auto& e : p) e.second /= total;
  return p;
}

std::int32_t Sampler::sample(std::span<const float> logits) {
  if (opt_.temperature == 0.0f) return greedy_token(logits);
  const auto p = distribution(logits);
  // 53 random bits -> [0, 1): the same double on every platform.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  double cum = 0;
  for (const auto& [id, pr] : p) {
    cum += pr;
    if (u < cum) return id;
  }
  return p.back().first;  // u within rounding of 1
}

}  // namespace pocketlora
