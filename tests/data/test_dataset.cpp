// Training data: Alpaca / chat / text readers, templates with loss masks, packing, deterministic shuffle/split.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/test_data.h"
#include "host/core/error.h"
#include "host/data/batching.h"
#include "host/data/dataset.h"
#include "host/tokenizer/tokenizer.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(Dataset, AlpacaDemoCountsAndMasks) {
  POCKETLORA_REQUIRE_DATA(path, "datasets/alpaca_en_demo.json");
  POCKETLORA_REQUIRE_DATA(tokp, "tokenizers/llama2/tokenizer.model");
  auto records = read_records(path);
  // Independent count with nlohmann directly.
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in);
  std::size_t with_input = 0;
  for (auto& r : j) with_input += !r.value("input", std::string()).empty();
  ASSERT_EQ(records.size(), j.size());
  EXPECT_EQ(std::count_if(records.begin(), records.end(), [](auto& r) { return !r.alpaca_input.empty(); }),
            static_cast<std::ptrdiff_t>(with_input));
  auto tok = load_tokenizer(tokp);
  for (std::size_t i = 0; i < 20; ++i) {
    const auto& r = records[i];
    Example ex = tokenize_record(*tok, r, ChatTemplate::Llama2);
    ASSERT_EQ(ex.ids.size(), ex.labels.size());
    // The masked prefix is exactly the prompt's tokens; the response and EOS are trained.
    const auto prompt_ids = tok->encode(alpaca_prompt(r.alpaca_instruction, r.alpaca_input), true, false);
    for (std::size_t t = 0; t < ex.ids.size(); ++t) {
      if (t < prompt_ids.size()) ASSERT_EQ(ex.labels[t], kIgnoreLabel) << "record " << i << " token " << t;
      else ASSERT_EQ(ex.labels[t], ex.ids[t]) << "record " << i << " token " << t;
    }
    EXPECT_EQ(ex.ids.back(), *tok->eos_id());
    // The decoded trained part is the output text.
    std::vector<std::int32_t> resp(ex.ids.begin() + static_cast<std::ptrdiff_t>(prompt_ids.size()), ex.ids.end() - 1);
    EXPECT_NE(tok->decode(resp).find(r.alpaca_output.substr(0, 20)), std::string::npos) << i;
  }
}

TEST(Dataset, AlpacaTemplateTextIsStanfordsAndJsonlWorks) {
  EXPECT_EQ(alpaca_prompt("Say hi.", ""),
            "Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\nSay hi.\n\n### Response:\n");
  EXPECT_NE(alpaca_prompt("Sum.", "1 2").find("paired with an input that provides further context"), std::string::npos);
  TempDir tmp;
  std::ofstream(tmp / "a.jsonl") << R"({"instruction": "a", "output": "b"})" << "\n\n"
                                 << R"({"instruction": "c", "input": "d", "output": "e"})" << "\n";
  EXPECT_EQ(read_records(tmp / "a.jsonl").size(), 2u);
  std::ofstream(tmp / "bad.jsonl") << R"({"instruction": "a", "output": "b"})" << "\n" << R"({"output": "b"})" << "\n";
  try {
    read_records(tmp / "bad.jsonl");
    FAIL();
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("line 2"), std::string::npos) << m;
    EXPECT_NE(m.find("instruction"), std::string::npos) << m;
  }
  std::ofstream(tmp / "empty.json") << "  \n";
  EXPECT_THROW(read_records(tmp / "empty.json"), FormatError);
  std::ofstream(tmp / "utf8.txt") << "ok \xff\xfe bad";
  EXPECT_THROW(read_records(tmp / "utf8.txt"), FormatError);
  std::ofstream(tmp / "role.jsonl") << R"({"messages": [{"role": "robot", "content": "x"}]})" << "\n";
  EXPECT_THROW(read_records(tmp / "role.jsonl"), FormatError);
}

TEST(Dataset, Llama3ChatMasksAndBlocksSpecialTokenInjection) {
  POCKETLORA_REQUIRE_DATA(tokp, "tokenizers/llama3/tokenizer.json");
  auto tok = load_tokenizer(tokp);
  EXPECT_EQ(detect_chat_template(*tok), ChatTemplate::Llama3);
  Record r;
  r.messages = {{"system", "Be brief."}, {"user", "Hi <|eot_id|> there"}, {"assistant", "Hello!"}};
  Example ex = tokenize_record(*tok, r, ChatTemplate::Llama3);
  const auto eot = *tok->token_to_id("<|eot_id|>");
  // Exactly three <|eot_id|> ids: one per turn; the one typed by the user stays text.
  EXPECT_EQ(std::count(ex.ids.begin(), ex.ids.end(), eot), 3);
  // Trained tokens decode to the assistant's content and its closing <|eot_id|>.
  std::vector<std::int32_t> trained;
  for (std::size_t t = 0; t < ex.ids.size(); ++t)
    if (ex.labels[t] != kIgnoreLabel) trained.push_back(ex.ids[t]);
  ASSERT_FALSE(trained.empty());
  EXPECT_EQ(trained.back(), eot);
  trained.pop_back();
  EXPECT_EQ(tok->decode(trained), "\n\nHello!");
  EXPECT_EQ(ex.ids.front(), *tok->bos_id());
}

TEST(Dataset, PackingNeverCrossesDocumentsAndShuffleIsDeterministic) {
  std::vector<Example> ex;
  for (int d = 0; d < 5; ++d) {
    Example e;
    for (int t = 0; t < 3 + d; ++t) {
      e.ids.push_back(100 * d + t);
      e.labels.push_back(t % 2 ? 100 * d + t : kIgnoreLabel);
    }
    e.segment.assign(e.ids.size(), 0);
    e.positions.assign(e.ids.size(), 0);
    ex.push_back(e);
  }
  PackStats st;
  auto w = pack_examples(ex, 8, 0, &st);
  ASSERT_FALSE(w.empty());
  for (auto& win : w) {
    ASSERT_EQ(win.ids.size(), 8u);
    for (std::size_t t = 0; t < 8; ++t) {
      if (win.segment[t] < 0) {
        EXPECT_EQ(win.labels[t], kIgnoreLabel);  // padding
        continue;
      }
      const bool first_of_doc = t == 0 || win.segment[t - 1] != win.segment[t];
      if (first_of_doc) {
        EXPECT_EQ(win.labels[t], kIgnoreLabel) << "a target crosses documents";
      }
      EXPECT_EQ(win.positions[t], first_of_doc ? 0 : win.positions[t - 1] + 1);
    }
  }
  EXPECT_EQ(st.truncated, 0);
  EXPECT_GT(st.fill, 0.5);
  auto a = shuffled_indices(1000, 7), b = shuffled_indices(1000, 7), c = shuffled_indices(1000, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(std::set<std::size_t>(a.begin(), a.end()).size(), 1000u);
  auto [train, val] = split_indices(1000, 0.1, 3);
  EXPECT_EQ(val.size(), 100u);
  std::set<std::size_t> all(train.begin(), train.end());
  for (auto v : val) EXPECT_TRUE(all.insert(v).second) << "overlap";
  EXPECT_EQ(all.size(), 1000u);
}

TEST(Dataset, PlainTextDocumentsAndLargeJsonl) {
  POCKETLORA_REQUIRE_DATA(path, "datasets/tinystories_sample.txt");
  auto docs = read_records(path);
  EXPECT_GT(docs.size(), 1u);
  for (auto& d : docs) EXPECT_EQ(d.text.find("<|endoftext|>"), std::string::npos);
  TempDir tmp;
  {
    std::ofstream out(tmp / "big.jsonl");
    for (int i = 0; i < 100000; ++i) out << R"({"instruction": "q)" << i << R"(", "output": "a"})" << "\n";
  }
  EXPECT_EQ(read_records(tmp / "big.jsonl").size(), 100000u);
}

}  // namespace
