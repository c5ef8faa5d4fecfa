#pragma once
// Validation loss of instruction or chat data (Alpaca, chat JSONL) as training computes it: the same records,
// templates, prompt masking and cut to the context (host/train/train_data.h, one example per window), scored by
// the step engine's eval program (LoRA dropout off): the mean cross-entropy over every target (response) token
// of every record, and its perplexity exp(loss).
#include <cstdint>

#include "host/train/step_engine.h"
#include "host/train/train_data.h"

namespace pocketlora {

struct ValidationLossResult {
  double loss = 0, ppl = 0;
  std::int64_t records = 0, windows = 0, targets = 0;
  std::int64_t truncated = 0, dropped_no_targets = 0;  // examples cut to the context / left with no target
};

// `data` must hold every record in train() (built with validation_fraction 0) in windows of the engine's seq_len;
// InvalidArgument otherwise or when no target token is left.
ValidationLossResult validation_loss(TrainStepEngine& engine, const TrainData& data);

}  // namespace pocketlora
