// Sampling (host/infer/sampler.h) on fixed logits: greedy, temperature, exact top-k / top-p truncation against
// hand-computed distributions, draw frequencies with a fixed seed, determinism per seed; and the UTF-8 text stream
// (host/infer/text_stream.h).
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/infer/sampler.h"
#include "host/infer/text_stream.h"
#include "host/tokenizer/utf8.h"

namespace pocketlora {
namespace {

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> l;
  for (double v : p) l.push_back(static_cast<float>(std::log(v)));
  return l;
}

TEST(Sampler, TemperatureZeroIsGreedyWithLowestIdOnTies) {
  Sampler s({});
  EXPECT_EQ(s.sample(std::vector<float>{0.5f, 3.0f, -1.0f, 3.0f}), 1);
  EXPECT_EQ(greedy_token(std::vector<float>{-2.0f}), 0);
  EXPECT_THROW(greedy_token(std::vector<float>{}), InvalidArgument);
}

TEST(Sampler, TopKKeepsExactlyTheKMostLikely) {
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_k = 2;
  const auto d = Sampler(o).distribution(std::vector<float>{1, 2, 3, 4, 5});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].first, 4);
  EXPECT_EQ(d[1].first, 3);
  // e^5 / (e^5 + e^4) = 1 / (1 + e^-1)
  EXPECT_NEAR(d[0].second, 1.0 / (1.0 + std::exp(-1.0)), 1e-12);
  EXPECT_NEAR(d[1].second, 1.0 / (1.0 + std::exp(1.0)), 1e-12);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  SamplingOptions o;
  o.temperature = 1.0f;
  const auto logits = log_probs({0.15, 0.5, 0.05, 0.3});
  o.top_p = 0.7f;  // 0.5 < 0.7 <= 0.5 + 0.3
  auto d = Sampler(o).distribution(logits);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].first, 1);
  EXPECT_EQ(d[1].first, 3);
  EXPECT_NEAR(d[0].second, 0.5 / 0.8, 1e-6);
  EXPECT_NEAR(d[1].second, 0.3 / 0.8, 1e-6);
  o.top_p = 0.85f;  // needs the third: 0.8 < 0.85
  d = Sampler(o).distribution(logits);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[2].first, 0);
  EXPECT_NEAR(d[2].second, 0.15 / 0.95, 1e-6);
  o.top_p = 0.4f;  // the most likely alone already reaches it
  EXPECT_EQ(Sampler(o).distribution(logits).size(), 1u);
  // After top-k 2 ({0.5, 0.3} renormalised to {0.625, 0.375}), p 0.6 keeps only the first.
  o.top_k = 2;
  o.top_p = 0.6f;
  EXPECT_EQ(Sampler(o).distribution(logits).size(), 1u);
}

// 40000 draws, seed 3: each frequency within 0.01 of its probability (binomial sd <= 0.0025, so 4 sd).
TEST(Sampler, DrawFrequenciesFollowTheTemperedDistribution) {
  const std::vector<double> p = {0.5, 0.3, 0.2};
  for (float temperature : {1.0f, 2.0f}) {
    SamplingOptions o;
    o.temperature = temperature;
    o.seed = 3;
    Sampler s(o);
    std::map<std::int32_t, int> count;
    const int n = 40000;
    for (int i = 0; i < n; ++i) ++count[s.sample(log_probs(p))];
    // Softmax(log p / T) = p^(1/T) / sum.
    double z = 0;
    for (double v : p) z += std::pow(v, 1.0 / temperature);
    for (std::int32_t id = 0; id < 3; ++id)
      EXPECT_NEAR(count[id] / double(n), std::pow(p[static_cast<std::size_t>(id)], 1.0 / temperature) / z, 0.01)
          << "temperature " << temperature << " id " << id;
  }
}

TEST(Sampler, SameSeedSameTokens) {
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_p = 0.95f;
  const auto logits = log_probs({0.2, 0.2, 0.2, 0.2, 0.2});
  const auto draw = [&](std::uint64_t seed) {
    o.seed = seed;
    Sampler s(o);
    std::vector<std::int32_t> ids;
    for (int i = 0; i < 64; ++i) ids.push_back(s.sample(logits));
    return ids;
  };
  EXPECT_EQ(draw(5), draw(5));
  EXPECT_NE(draw(5), draw(6));
}

TEST(Sampler, InvalidOptionsNameTheField) {
  SamplingOptions o;
  o.temperature = -1;
  EXPECT_TRUE(test::mentions(test::error_of<InvalidArgument>([&] { o.validate(); }), {"temperature"}));
  o = {};
  o.top_p = 0;
  EXPECT_TRUE(test::mentions(test::error_of<InvalidArgument>([&] { o.validate(); }), {"top_p"}));
  o = {};
  o.top_k = -2;
  EXPECT_TRUE(test::mentions(test::error_of<InvalidArgument>([&] { o.validate(); }), {"top_k"}));
}

TEST(TextStream, CompleteUtf8Prefix) {
  EXPECT_EQ(complete_utf8_prefix("abc"), 3u);
  EXPECT_EQ(complete_utf8_prefix("a\xE2\x82"), 1u);     // € (E2 82 AC) unfinished
  EXPECT_EQ(complete_utf8_prefix("a\xE2\x82\xAC"), 4u);
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98"), 0u);  // 😀 (F0 9F 98 80) unfinished
  EXPECT_EQ(sanitize_utf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
}

// Llama 2's SentencePiece spells characters outside its vocabulary as byte pieces, so "€" and "😀" arrive over
// several tokens: every push is valid UTF-8 and the pushes concatenate to the whole decode.
TEST(TextStream, ByteFallbackCharactersComeOutWhole) {
  POCKETLORA_REQUIRE_DATA(path, "tokenizers/llama2/tokenizer.model");
  const auto tok = load_tokenizer(path);
  const std::string text = "Price: 5€ 😀 done";
  const auto ids = tok->encode(text, false);
  TextStream stream(*tok);
  std::string out;
  int held = 0;
  for (const std::int32_t id : ids) {
    const std::string piece = stream.push(id);
    EXPECT_TRUE(utf8::valid(piece)) << id;
    held += piece.empty();
    out += piece;
  }
  out += stream.finish();
  EXPECT_EQ(out, tok->decode(ids));
  EXPECT_NE(out.find("5€ 😀 done"), std::string::npos) << out;
  EXPECT_GT(held, 0) << "no byte piece was held back: the text did not exercise byte fallback";
}

}  // namespace
}  // namespace pocketlora
