#include "host/train/train_data.h"

#include <fmt/format.h>

#include <algorithm>

#include "host/core/error.h"
#include "host/core/op/cross_entropy.h"
#include "host/tokenizer/tokenizer.h"
#include "host/util/splitmix64.h"

namespace pocketlora {

namespace {

bool has_target(const Example& e) {
  // labels[0] is never a target (nothing predicts the first token).
  for (std::size_t t = 1; t < e.labels.size(); ++t)
    if (e.labels[t] != kIgnoreLabel) return true;
  return false;
}

std::int64_t count_targets(const std::vector<Example>& windows) {
  std::int64_t n = 0;
  for (const auto& w : windows)
    for (std::size_t t = 1; t < w.labels.size(); ++t) n += w.labels[t] != kIgnoreLabel;
  return n;
}

// A document longer than seq_len as consecutive pieces of at most seq_len tokens (plain text: a book is one
// document, and every part of it is training data).
std::vector<Example> split_long(std::vector<Example> ex, std::int64_t seq_len, TrainDataStats& st) {
  std::vector<Example> out;
  const auto L = static_cast<std::size_t>(seq_len);
  for (auto& e : ex) {
    if (e.ids.size() <= L) {
      out.push_back(std::move(e));
      continue;
    }
    ++st.split;
    for (std::size_t b = 0; b < e.ids.size(); b += L) {
      const auto first = static_cast<std::ptrdiff_t>(b);
      const auto last = static_cast<std::ptrdiff_t>(std::min(e.ids.size(), b + L));
      Example p;
      p.ids.assign(e.ids.begin() + first, e.ids.begin() + last);
      p.labels.assign(e.labels.begin() + first, e.labels.begin() + last);
      p.segment.assign(p.ids.size(), 0);
      p.positions.resize(p.ids.size());
      for (std::size_t t = 0; t < p.ids.size(); ++t) p.positions[t] = static_cast<std::int32_t>(t);
      out.push_back(std::move(p));
    }
  }
  return out;
}

// Examples -> windows: packed (long documents split first), or each cut to seq_len; examples left with no target
// are dropped.
std::vector<Example> to_windows(std::vector<Example> ex, std::int64_t seq_len, bool pack, std::int32_t pad_id,
                                TrainDataStats& st) {
  PackStats ps;
  if (pack) ex = split_long(std::move(ex), seq_len, st);
  ex = truncate_examples(std::move(ex), seq_len, &ps);
  st.truncated += ps.truncated;
  std::vector<Example> kept;
  for (auto& e : ex) {
    if (has_target(e)) kept.push_back(std::move(e));
    else ++st.dropped_no_targets;
  }
  if (pack) return pack_examples(kept, seq_len, pad_id);
  return kept;
}

}  // namespace

TrainData::TrainData(const Tokenizer& tok, const TrainDataOptions& opt, std::int64_t model_context,
                     std::int64_t model_vocab)
    : seq_len_(opt.seq_len), pad_id_(tok.eos_id().value_or(0)), seed_(opt.seed) {
  const std::string file = opt.path.string();
  if (opt.seq_len < 2) throw InvalidArgument(fmt::format("--seq-len must be at least 2, got {}", opt.seq_len));
  if (model_context > 0 && opt.seq_len > model_context)
    throw InvalidArgument(
        fmt::format("--seq-len {} is longer than the model's context ({} tokens)", opt.seq_len, model_context));
  if (tok.vocab_size() > model_vocab)
    throw InvalidArgument(
        fmt::format("the tokenizer has {} tokens but the "
                    "model's vocabulary has {}: they do not "
                    "belong together",
                    tok.vocab_size(), model_vocab));
  const auto records = read_records(opt.path, opt.format, opt.separator);
  if (records.empty()) throw InvalidArgument(fmt::format("{}: the dataset has no records", file));
  stats_.records = static_cast<std::int64_t>(records.size());
  const bool text = std::all_of(records.begin(), records.end(), [](const Record& r) { return !r.text.empty(); });
  stats_.packed = opt.pack.value_or(text);
  const ChatTemplate tmpl = opt.chat_template.value_or(detect_chat_template(tok));

  // Instruction/chat data is split by record (no example in both). Packed text is split by window below: a
  // plain-text file is often one document (a book), which a record split could not divide.
  const auto [train_idx, val_idx] =
      split_indices(records.size(), !stats_.packed && records.size() > 1 ? opt.validation_fraction : 0.0, opt.seed);
  auto tokenize = [&](const std::vector<std::size_t>& idx) {
    std::vector<Example> ex;
    ex.reserve(idx.size());
    // Keep the file's order inside each split so packing joins neighbouring
    // documents, as a reader would.
    std::vector<std::size_t> sorted = idx;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i : sorted) ex.push_back(tokenize_record(tok, records[i], tmpl));
    return ex;
  };
  stats_.train_records = static_cast<std::int64_t>(train_idx.size());
  stats_.validation_records = static_cast<std::int64_t>(val_idx.size());
  TrainDataStats discard;
  train_ = to_windows(tokenize(train_idx), opt.seq_len, stats_.packed, pad_id_, stats_);
  validation_ = to_windows(tokenize(val_idx), opt.seq_len, stats_.packed, pad_id_, discard);
  if (stats_.packed && train_.size() > 1) {
    const auto [tw, vw] = split_indices(train_.size(), opt.validation_fraction, opt.seed);
    std::vector<Example> t, v;
    for (std::size_t i : tw) t.push_back(std::move(train_[i]));
    for (std::size_t i : vw) v.push_back(std::move(train_[i]));
    train_ = std::move(t);
    validation_ = std::move(v);
  }
  if (opt.max_validation_windows >= 0 && static_cast<std::int64_t>(validation_.size()) > opt.max_validation_windows) {
    // A seeded sample, not the first windows of the file (those would all be one part of the text).
    const auto keep = shuffled_indices(validation_.size(), opt.seed ^ 0x76616c6964ull);
    std::vector<Example> v;
    for (std::int64_t i = 0; i < opt.max_validation_windows; ++i)
      v.push_back(std::move(validation_[keep[static_cast<std::size_t>(i)]]));
    validation_ = std::move(v);
  }
  stats_.train_windows = static_cast<std::int64_t>(train_.size());
  stats_.validation_windows = static_cast<std::int64_t>(validation_.size());
  stats_.train_targets = count_targets(train_);
  if (stats_.train_targets == 0)
    throw InvalidArgument(
        fmt::format("{}: no token of the training split is a training target ({} records; "
                    "{} dropped with every trained token "
                    "past --seq-len {}): nothing to learn from",
                    file, stats_.train_records, stats_.dropped_no_targets, opt.seq_len));
  std::int64_t real = 0;
  for (const auto& w : train_)
    for (std::size_t t = 0; t < w.ids.size(); ++t) {
      if (w.ids[t] < 0 || w.ids[t] >= model_vocab)
        throw InvalidArgument(
            fmt::format("{}: token id {} is outside the model's vocabulary [0, {})", file, w.ids[t], model_vocab));
      real += !w.segment.empty() && w.segment[t] >= 0;
    }
  stats_.fill =
      static_cast<double>(real) / static_cast<double>(std::max<std::int64_t>(1, stats_.train_windows) * seq_len_);
}

std::vector<std::size_t> TrainData::epoch_order(std::int64_t epoch) const {
  std::uint64_t s = seed_ ^ 0x7261696e5f646174ull;  // "rain_dat": a stream apart from the
                                                    // validation split's
  s += static_cast<std::uint64_t>(epoch);
  return shuffled_indices(train_.size(), splitmix64(s));
}

TokenBatch make_token_batch(const std::vector<Example>& windows, std::span<const std::size_t> which, std::int64_t batch,
                            std::int64_t seq_len, std::int32_t pad_id) {
  if (static_cast<std::int64_t>(which.size()) > batch)
    throw InvalidArgument(fmt::format("make_token_batch: {} windows for a batch of {}", which.size(), batch));
  TokenBatch b;
  b.batch = batch;
  b.seq_len = seq_len;
  const auto n = static_cast<std::size_t>(batch * seq_len);
  b.ids.assign(n, pad_id);
  b.positions.assign(n, 0);
  b.segments.assign(n, -1);
  b.targets.assign(n, kIgnoreIndex);
  for (std::size_t w = 0; w < which.size(); ++w) {
    const Example& e = windows.at(which[w]);
    const auto len = std::min(e.ids.size(), static_cast<std::size_t>(seq_len));
    const std::size_t base = w * static_cast<std::size_t>(seq_len);
    for (std::size_t t = 0; t < len; ++t) {
      b.ids[base + t] = e.ids[t];
      b.positions[base + t] = e.positions.empty() ? static_cast<std::int32_t>(t) : e.positions[t];
      b.segments[base + t] = e.segment.empty() ? 0 : e.segment[t];
      const bool same_doc = t + 1 < len && (e.segment.empty() || e.segment[t + 1] == e.segment[t]);
      if (same_doc && e.labels[t + 1] != kIgnoreLabel) {
        b.targets[base + t] = e.labels[t + 1];
        ++b.target_count;
      }
    }
  }
  return b;
}

}  // namespace pocketlora
