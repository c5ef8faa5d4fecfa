#pragma once
// A micro-batch of `batch` windows of `seq_len` random token ids in [1, 500] (inside stories260K's vocabulary),
// positions restarting per window, every next token of a window its target (the last one masked).
#include <cstdint>

#include "host/train/train_data.h"
#include "host/util/splitmix64.h"

namespace pocketlora::test {

inline TokenBatch random_token_batch(std::int64_t batch, std::int64_t seq_len, std::uint64_t seed) {
  TokenBatch b;
  b.batch = batch;
  b.seq_len = seq_len;
  for (std::int64_t i = 0; i < batch * seq_len; ++i) {
    b.ids.push_back(static_cast<std::int32_t>(1 + splitmix64(seed) % 500));
    b.positions.push_back(static_cast<std::int32_t>(i % seq_len));
  }
  for (std::int64_t i = 0; i < batch * seq_len; ++i) {
    const bool last = i % seq_len == seq_len - 1;
    b.targets.push_back(last ? -100 : b.ids[static_cast<std::size_t>(i + 1)]);
    b.target_count += !last;
  }
  return b;
}

}  // namespace pocketlora::test
