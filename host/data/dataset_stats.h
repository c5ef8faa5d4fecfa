#pragma once
// What `pocketlora data stats` reports about a dataset before training, and what the app shows beside its upload:
// record counts, token-length statistics, how much of the data is masked out of the loss, how many examples the
// sequence length truncates, and (packing) how full the windows are. One function for both.
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/data/dataset.h"
#include "host/tokenizer/tokenizer.h"

namespace pocketlora {

// {"records", "alpaca_with_input", "template", "tokens", "tokens_min", "tokens_mean", "tokens_median",
//  "tokens_p95", "tokens_max", "seq_len", "truncated", "masked_fraction"[, "packed_windows", "pack_fill"]}.
// FormatError when there are no records.
nlohmann::json dataset_stats(const std::vector<Record>& records, const Tokenizer& tok, ChatTemplate tmpl,
                             std::int64_t seq_len, bool pack);

}  // namespace pocketlora
