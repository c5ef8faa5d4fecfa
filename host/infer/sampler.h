#pragma once
// Next-token sampling from one row of logits: temperature, then top-k, then top-p (the order of Hugging Face's
// logits warpers), then a draw from the renormalised distribution with a seeded generator — the same seed gives the
// same tokens on every platform (mt19937_64 is fully specified and the uniform draw is computed here, not by
// <random>'s implementation-defined distributions). Temperature 0 is greedy: the largest logit, the lowest id on
// ties.
#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace pocketlora {

struct SamplingOptions {
  float temperature = 0.0f;  // 0: greedy
  std::int64_t top_k = 0;    // keep the k most likely tokens; 0: all
  float top_p = 1.0f;        // keep the smallest most-likely set whose probability reaches p; 1: all
  std::uint64_t seed = 0;
  // InvalidArgument naming the field: temperature negative or not finite, top_k negative, top_p outside (0, 1].
  void validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& opt);
  std::int32_t sample(std::span<const float> logits);
  // What sample() draws from (temperature > 0): the kept (id, probability) pairs, most likely first (ties by id),
  // probabilities summing to 1.
  std::vector<std::pair<std::int32_t, double>> distribution(std::span<const float> logits) const;

 private:
  SamplingOptions opt_;
  std::mt19937_64 rng_;
};

// The id of the largest logit, the lowest on ties; InvalidArgument on an empty row.
std::int32_t greedy_token(std::span<const float> logits);

}  // namespace pocketlora
