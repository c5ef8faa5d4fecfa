#pragma once
// From tokenized examples to fixed-length training windows.
//   truncate: cut each example to seq_len.
//   pack:     concatenate examples into seq_len windows. Each token carries its document (segment) id and a
//             position id that restarts at 0 per document; the first token of every document is never a target
//             (its label is ignored), so no loss term predicts one document from another. The attention kernels
//             take the segment ids for a block-diagonal causal mask, RoPE takes the positions.
//   shuffle/split: deterministic from a seed (splitmix64 + rejection-sampled bounded draws), identical on every platform.
#include <cstdint>
#include <vector>

#include "host/data/dataset.h"

namespace pocketlora {

struct PackStats {
  std::int64_t truncated = 0;  // examples longer than seq_len
  std::int64_t windows = 0;
  double fill = 0;             // fraction of window tokens that are real (not padding)
};

std::vector<Example> truncate_examples(std::vector<Example> examples, std::int64_t seq_len, PackStats* stats = nullptr);
std::vector<Example> pack_examples(const std::vector<Example>& examples, std::int64_t seq_len, std::int32_t pad_id,
                                   PackStats* stats = nullptr);

// A permutation of 0..n-1 determined by seed.
std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed);
// Splits indices into (train, validation) with round(n * fraction) validation items, after a seeded shuffle.
std::pair<std::vector<std::size_t>, std::vector<std::size_t>> split_indices(std::size_t n, double validation_fraction,
                                                                            std::uint64_t seed);

}  // namespace pocketlora
