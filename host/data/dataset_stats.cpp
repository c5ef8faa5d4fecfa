#include "host/data/dataset_stats.h"

#include <algorithm>

#include "host/core/error.h"
#include "host/data/batching.h"

namespace pocketlora {

nlohmann::json dataset_stats(const std::vector<Record>& records, const Tokenizer& tok, ChatTemplate tmpl,
                             std::int64_t seq_len, bool pack) {
  if (records.empty()) throw FormatError("dataset stats: the dataset has no records");
  std::vector<Example> ex;
  std::int64_t with_input = 0, masked = 0, total = 0;
  for (const auto& r : records) {
    with_input += r.alpaca && !r.alpaca_input.empty();
    ex.push_back(tokenize_record(tok, r, tmpl));
    total += static_cast<std::int64_t>(ex.back().ids.size());
    masked += std::count(ex.back().labels.begin(), ex.back().labels.end(), kIgnoreLabel);
  }
  std::vector<std::size_t> lens;
  for (const auto& e : ex) lens.push_back(e.ids.size());
  std::sort(lens.begin(), lens.end());
  PackStats ps;
  if (pack) pack_examples(ex, seq_len, tok.eos_id().value_or(0), &ps);
  else truncate_examples(ex, seq_len, &ps);
  nlohmann::json out = {
      {"records", records.size()},
      {"alpaca_with_input", with_input},
      {"template", chat_template_name(tmpl)},
      {"tokens", total},
      {"tokens_min", lens.front()},
      {"tokens_mean", static_cast<double>(total) / static_cast<double>(lens.size())},
      {"tokens_median", lens[lens.size() / 2]},
      {"tokens_p95", lens[std::min(lens.size() - 1, lens.size() * 95 / 100)]},
      {"tokens_max", lens.back()},
      {"seq_len", seq_len},
      {"truncated", ps.truncated},
      {"masked_fraction", total ? static_cast<double>(masked) / static_cast<double>(total) : 0.0}};
  if (pack) {
    out["packed_windows"] = ps.windows;
    out["pack_fill"] = ps.fill;
  }
  return out;
}

}  // namespace pocketlora
