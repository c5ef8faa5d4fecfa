#pragma once
// Per-token log-likelihoods of token windows, the one scoring path of `pocketlora eval` (perplexity, multiple
// choice). It runs the training step engine's eval program (host/train/step_engine.h: the forward LoRA training
// validates with, LoRA dropout off) rather than llama_forward_logits, because that is the one forward that applies
// a LoRA adapter, on both backends and over plain or NF4 bases; without an adapter the engine is given one with no
// modules, so the same code scores the base alone. Labels outside the scored tokens are masked (kIgnoreIndex).
#include <cstdint>
#include <vector>

#include "host/train/step_engine.h"

namespace pocketlora {

struct ScoredWindow {
  std::vector<std::int32_t> ids;  // at most the engine's seq_len tokens, at positions 0, 1, ...
  std::int64_t first = 1;         // ids[first], ..., ids[size - 1] are scored, each given the tokens before it
};

// For each window, -log p(ids[t] | ids[0..t-1]) for t = first .. size-1, in order; the engine needs
// StepEngineOptions::token_scores. Windows run micro_batch at a
// time (the rest of the last micro-batch is padding with no target); `pad_id` fills each window up to seq_len.
// InvalidArgument naming the window when it is longer than seq_len or first is outside [1, size).
std::vector<std::vector<double>> score_windows(TrainStepEngine& engine, const std::vector<ScoredWindow>& windows,
                                               std::int32_t pad_id);

}  // namespace pocketlora
