// host/train/train_data.h: dataset file -> checked, split, windowed data ->
// fixed-shape micro-batches.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/core/op/cross_entropy.h"
#include "host/tokenizer/tokenizer.h"
#include "host/train/train_data.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

constexpr std::int64_t kContext = 512, kVocab = 512;  // stories260K

TEST(TrainData, PlainTextIsPackedAndSplitByWindow) {
  POCKETLORA_REQUIRE_DATA(text, "datasets/tinystories_sample.txt");
  POCKETLORA_REQUIRE_DATA(tokp, "models/stories260K/tok512.bin");
  auto tok = load_tokenizer(tokp);
  TrainDataOptions opt;
  opt.path = text;
  opt.seq_len = 64;
  opt.validation_fraction = 0.25;
  TrainData d(*tok, opt, kContext, kVocab);
  const auto& st = d.stats();
  EXPECT_TRUE(st.packed);
  EXPECT_GT(st.records, 3);
  EXPECT_EQ(st.truncated, 0);  // long stories continue in the next window instead
  EXPECT_GT(st.split, 0);
  ASSERT_GT(st.validation_windows, 0);
  // Every token of the file is in exactly one window: count them independently from the tokenizer (each
  // document is BOS + its text + EOS).
  std::int64_t file_tokens = 0, window_tokens = 0;
  for (const auto& r : read_records(text))
    file_tokens += static_cast<std::int64_t>(tok->encode(r.text, true).size()) + 1;
  for (const auto* split : {&d.train(), &d.validation()})
    for (const auto& w : *split) {
      ASSERT_EQ(w.ids.size(), 64u);
      for (auto s : w.segment) window_tokens += s >= 0;
    }
  EXPECT_EQ(window_tokens, file_tokens);
  EXPECT_EQ(st.train_windows + st.validation_windows,
            static_cast<std::int64_t>(d.train().size() + d.validation().size()));
  EXPECT_GT(st.fill, 0.5);
  EXPECT_LE(st.fill, 1.0);
}

TEST(TrainData, BatchTargetsAreNextTokensWithinADocument) {
  POCKETLORA_REQUIRE_DATA(text, "datasets/tinystories_sample.txt");
  POCKETLORA_REQUIRE_DATA(tokp, "models/stories260K/tok512.bin");
  auto tok = load_tokenizer(tokp);
  TrainDataOptions opt;
  opt.path = text;
  opt.seq_len = 48;
  opt.validation_fraction = 0;
  TrainData d(*tok, opt, kContext, kVocab);
  const std::vector<std::size_t> which{0, 1};
  const TokenBatch b = make_token_batch(d.train(), which, 3, 48, d.pad_id());
  ASSERT_EQ(b.tokens(), 3 * 48);
  std::int64_t counted = 0;
  for (std::size_t w = 0; w < 2; ++w) {
    const Example& e = d.train()[which[w]];
    for (std::size_t t = 0; t < 48; ++t) {
      const std::size_t i = w * 48 + t;
      ASSERT_EQ(b.ids[i], e.ids[t]);
      const bool boundary = t + 1 == 48 || e.segment[t + 1] != e.segment[t];
      if (boundary || e.labels[t + 1] == kIgnoreLabel) {
        EXPECT_EQ(b.targets[i], kIgnoreIndex) << "window " << w << " token " << t;
      } else {
        EXPECT_EQ(b.targets[i], e.ids[t + 1]) << "window " << w << " token " << t;
        ++counted;
      }
    }
  }
  EXPECT_EQ(b.target_count, counted);
  // The third window is padding: no targets, segment -1.
  for (std::size_t i = 96; i < 144; ++i) {
    EXPECT_EQ(b.targets[i], kIgnoreIndex);
    EXPECT_EQ(b.segments[i], -1);
  }
}

TEST(TrainData, EpochOrderIsSeededAndDiffersBetweenEpochs) {
  POCKETLORA_REQUIRE_DATA(data, "datasets/alpaca_en_demo.json");
  POCKETLORA_REQUIRE_DATA(tokp, "models/stories260K/tok512.bin");
  auto tok = load_tokenizer(tokp);
  TrainDataOptions opt;
  opt.path = data;
  opt.seq_len = 512;
  opt.chat_template = ChatTemplate::Llama2;
  TrainData a(*tok, opt, kContext, kVocab), b(*tok, opt, kContext, kVocab);
  EXPECT_FALSE(a.stats().packed);  // instruction data: one example per window
  EXPECT_EQ(a.epoch_order(0), b.epoch_order(0));
  EXPECT_NE(a.epoch_order(0), a.epoch_order(1));
  const auto order = a.epoch_order(3);
  EXPECT_EQ(std::set<std::size_t>(order.begin(), order.end()).size(), a.train().size());
  opt.seed = 7;
  TrainData c(*tok, opt, kContext, kVocab);
  EXPECT_NE(c.epoch_order(0), a.epoch_order(0));
}

TEST(TrainData, RefusesBadInputBeforeAnyWork) {
  POCKETLORA_REQUIRE_DATA(data, "datasets/alpaca_en_demo.json");
  POCKETLORA_REQUIRE_DATA(tokp, "models/stories260K/tok512.bin");
  auto tok = load_tokenizer(tokp);
  TempDir dir;
  TrainDataOptions opt;
  opt.path = data;
  opt.chat_template = ChatTemplate::Llama2;

  opt.seq_len = 1024;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { TrainData(*tok, opt, kContext, kVocab); }),
                       {"--seq-len 1024", "context (512"}));
  // Every Alpaca prompt is longer than 8 tokens here, so no response token
  // survives the cut.
  opt.seq_len = 8;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { TrainData(*tok, opt, kContext, kVocab); }),
                       {"alpaca_en_demo.json", "no token", "training target"}));
  opt.seq_len = 128;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { TrainData(*tok, opt, kContext, 100); }),
                       {"512 tokens", "vocabulary has 100"}));
  const auto empty = dir / "empty.jsonl";
  std::ofstream(empty).flush();
  opt.path = empty;
  const std::string msg = error_of<Error>([&] { TrainData(*tok, opt, kContext, kVocab); });
  EXPECT_NE(msg.find("empty.jsonl"), std::string::npos) << msg;
}

}  // namespace
