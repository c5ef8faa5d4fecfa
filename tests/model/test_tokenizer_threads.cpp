// encode/decode are const and keep per-call state only, so the data pipeline may share one tokenizer between
// threads: several threads encoding different texts at once must each get the single-threaded result.
#include <gtest/gtest.h>

#include <thread>

#include "host/tokenizer/tokenizer.h"
#include "tests/common/test_data.h"
#include "tests/model/test_tokenizer_util.h"

namespace pocketlora {
namespace {

void expect_thread_safe(const Tokenizer& tok, const std::string& text) {
  // Slices of different lengths so the threads' inputs differ.
  std::vector<std::string> parts;
  for (std::size_t k = 0; k < 4; ++k) parts.push_back(text.substr(k * 7000, 8000 + k * 3001));
  std::vector<std::vector<std::int32_t>> want;
  for (const auto& p : parts) want.push_back(tok.encode(p, true));
  std::vector<std::vector<std::int32_t>> got(parts.size());
  std::vector<std::string> back(parts.size());
  std::vector<std::thread> threads;
  for (std::size_t k = 0; k < parts.size(); ++k)
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 3; ++rep) got[k] = tok.encode(parts[k], true);
      back[k] = tok.decode(got[k]);
    });
  for (auto& t : threads) t.join();
  for (std::size_t k = 0; k < parts.size(); ++k) {
    EXPECT_EQ(got[k], want[k]) << "slice " << k;
    EXPECT_EQ(back[k], parts[k]) << "slice " << k;
  }
}

TEST(TokenizerThreads, SharedTokenizerEncodesConcurrently) {
  POCKETLORA_REQUIRE_DATA(text_path, "datasets/tinyshakespeare_input.txt");
  POCKETLORA_REQUIRE_DATA(spm, "tokenizers/llama2/tokenizer.model");
  POCKETLORA_REQUIRE_DATA(bpe, "tokenizers/llama3/tokenizer.json");
  const std::string text = test::read_text(text_path);
  ASSERT_GT(text.size(), 60000u);
  expect_thread_safe(*load_tokenizer(spm), text);
  expect_thread_safe(*load_tokenizer(bpe), text);
}

}  // namespace
}  // namespace pocketlora
