#pragma once
// From a dataset file to the fixed-shape micro-batches a training step
// consumes.
//   records (host/data) -> tokenized examples with loss masks -> windows of exactly seq_len tokens: plain text is
//   packed (long documents split into consecutive windows, short ones sharing a window with segment ids) and split
//   into train / validation by window; instruction data is one example per window (cut to seq_len) and split by
//   record, so no example is in both -> a seeded order per epoch -> micro-batches [B*S].
// Every check that can refuse the data runs here, before a model is touched: an
// empty file, seq_len beyond the model's context, no trainable token left,
// token ids outside the model's vocabulary.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "host/data/batching.h"
#include "host/data/dataset.h"

namespace pocketlora {

class Tokenizer;

struct TrainDataOptions {
  std::filesystem::path path;
  DataFormat format = DataFormat::Auto;
  std::optional<ChatTemplate> chat_template;  // default: detected from the tokenizer
  std::string separator = "<|endoftext|>";    // plain-text document separator
  std::int64_t seq_len = 256;
  std::optional<bool> pack;           // default: pack plain text, not instruction/chat data
  double validation_fraction = 0.05;
  std::int64_t max_validation_windows = 64;    // a random sample of at most this many (each pass runs them all)  // of the records; 0: no validation split
  std::uint64_t seed = 42;
};

struct TrainDataStats {
  std::int64_t records = 0, train_records = 0, validation_records = 0;
  std::int64_t train_windows = 0, validation_windows = 0;
  std::int64_t truncated = 0;           // examples longer than seq_len, cut (instruction data)
  std::int64_t split = 0;               // documents longer than seq_len spread over consecutive windows (packed text)
  std::int64_t dropped_no_targets = 0;  // examples with no trained token left after the cut (dropped)
  std::int64_t train_targets = 0;       // tokens that count in the training loss, per epoch
  bool packed = false;
  double fill = 0;  // fraction of window tokens that are real
};

// The data of one run. Construction does all the work and all the checks
// (errors name the file and the field).
class TrainData {
 public:
  // `model_context` / `model_vocab` come from the model config (a window may
  // not exceed the context; every id must index the embedding).
  TrainData(const Tokenizer& tok, const TrainDataOptions& opt, std::int64_t model_context, std::int64_t model_vocab);

  const std::vector<Example>& train() const { return train_; }
  const std::vector<Example>& validation() const { return validation_; }
  const TrainDataStats& stats() const { return stats_; }
  std::int64_t seq_len() const { return seq_len_; }
  std::int32_t pad_id() const { return pad_id_; }

  // The order of the train windows in epoch `epoch` (a shuffle seeded by the
  // run seed and the epoch, identical on every platform): resuming at (epoch,
  // index) continues the same sequence.
  std::vector<std::size_t> epoch_order(std::int64_t epoch) const;

 private:
  std::vector<Example> train_, validation_;
  TrainDataStats stats_;
  std::int64_t seq_len_ = 0;
  std::int32_t pad_id_ = 0;
  std::uint64_t seed_ = 0;
};

// A micro-batch as the step reads it: `batch` windows of `seq_len` tokens laid
// out back to back ([B*S]). targets[b*S + t] is the label the logits at token t
// are scored against: the window's label of token t+1 (HF's shift),
// kIgnoreIndex at the last token of each window and wherever the label is
// ignored. Segments are the packed documents' ids (-1 for padding); positions
// restart at 0 per document.
struct TokenBatch {
  std::int64_t batch = 0, seq_len = 0;
  std::vector<std::int32_t> ids, positions, segments, targets;
  std::int64_t target_count = 0;  // targets that are not ignored
  std::int64_t tokens() const { return batch * seq_len; }
};

// Windows `which` of `windows` (fewer than `batch` at the end of an epoch: the
// rest are padding windows with no targets, so every micro-batch has the same
// shape and a recorded step replays unchanged).
TokenBatch make_token_batch(const std::vector<Example>& windows, std::span<const std::size_t> which, std::int64_t batch,
                            std::int64_t seq_len, std::int32_t pad_id);

}  // namespace pocketlora
