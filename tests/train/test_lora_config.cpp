// LoRA configuration (targets, rank, dropout) and the PEFT initialisation of the host-side adapter.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error_message.h"
#include "host/core/error.h"
#include "host/train/lora_adapter.h"
#include "host/train/lora_config.h"

namespace pocketlora {
namespace {

using test::error_of;
using test::mentions;

LlamaConfig small_config() {
  LlamaConfig c;
  c.dim = 16;
  c.hidden_dim = 40;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 4;
  c.vocab_size = 11;
  c.max_seq_len = 8;
  return c;
}

TEST(LoraConfig, ParsesShortHfAndAllTargetNames) {
  using T = LoraTarget;
  EXPECT_EQ(parse_lora_targets("q,v"), (std::vector<T>{T::Q, T::V}));
  EXPECT_EQ(parse_lora_targets("down, q_proj ,gate_proj,q"), (std::vector<T>{T::Q, T::Gate, T::Down}));
  EXPECT_EQ(parse_lora_targets("all"), (std::vector<T>(kAllLoraTargets.begin(), kAllLoraTargets.end())));
  EXPECT_EQ(parse_lora_targets("q,k,v,o,gate,up,down"), parse_lora_targets("all"));
  EXPECT_STREQ(lora_target_hf_name(T::Up), "up_proj");
  EXPECT_STREQ(lora_target_name(T::O), "o");
}

TEST(LoraConfig, UnknownTargetNamesTheValueAndTheAcceptedOnes) {
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([] { parse_lora_targets("q,query"); }),
                       {"'query'", "q_proj", "down", "all"}));
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([] { parse_lora_targets("q,"); }), {"unknown target ''"}));
}

TEST(LoraConfig, ValidateRefusesRankDropoutAlphaAndEmptyTargets) {
  LoraConfig c;
  c.rank = 0;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { c.validate(); }), {"rank 0"}));
  c = {};
  c.dropout = 1.0f;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { c.validate(); }), {"dropout 1.0", "[0, 1)"}));
  c.dropout = -0.1f;
  EXPECT_THROW(c.validate(), InvalidArgument);
  c = {};
  c.alpha = NAN;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { c.validate(); }), {"alpha"}));
  c = {};
  c.targets.clear();
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { c.validate(); }), {"none chosen"}));
  c = {};
  c.targets = {LoraTarget::K, LoraTarget::K};
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { c.validate(); }), {"'k' appears twice"}));
  EXPECT_NO_THROW(LoraConfig{}.validate());
}

TEST(LoraConfig, ScaleIsAlphaOverRankOrOverSqrtRankWithRslora) {
  LoraConfig c;
  c.rank = 16;
  c.alpha = 32;
  EXPECT_FLOAT_EQ(c.scale(), 2.0f);
  c.rslora = true;
  EXPECT_FLOAT_EQ(c.scale(), 8.0f);
}

TEST(LoraAdapter, PeftInitShapesBoundsNamesAndDeterminism) {
  const LlamaConfig mc = small_config();
  LoraConfig c;
  c.rank = 4;
  const LoraAdapter ad = init_lora_adapter(mc, RopeLayout::Interleaved, c, 42);
  ASSERT_EQ(ad.modules.size(), 14u);
  const LoraModule* down = ad.find(1, LoraTarget::Down);
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->name(), "layers.1.down");
  EXPECT_EQ(down->a.shape(), (Shape{4, 40}));
  EXPECT_EQ(down->b.shape(), (Shape{16, 4}));
  EXPECT_EQ(ad.find(0, LoraTarget::K)->b.shape(), (Shape{8, 4}));  // kv_dim = 2 heads x 4
  for (const auto& m : ad.modules) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(m.a.dim(1)));
    double lo = 0, hi = 0, sum = 0;
    for (std::int64_t i = 0; i < m.a.numel(); ++i) {
      const double v = m.a.data<float>()[i];
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      sum += v;
    }
    EXPECT_LE(hi, bound) << m.name();
    EXPECT_GE(lo, -bound) << m.name();
    // U(-b, b) fills the range: with >= 64 draws the extremes come within half the bound of it.
    EXPECT_GT(hi, 0.5 * bound) << m.name();
    EXPECT_LT(lo, -0.5 * bound) << m.name();
    for (std::int64_t i = 0; i < m.b.numel(); ++i) ASSERT_EQ(m.b.data<float>()[i], 0.0f) << m.name();
  }
  // Same seed, same A; another seed, another A; dropping a target leaves the others' A unchanged.
  const LoraAdapter again = init_lora_adapter(mc, RopeLayout::Interleaved, c, 42);
  const LoraAdapter other = init_lora_adapter(mc, RopeLayout::Interleaved, c, 43);
  c.targets = {LoraTarget::V};
  const LoraAdapter only_v = init_lora_adapter(mc, RopeLayout::Interleaved, c, 42);
  ASSERT_EQ(only_v.modules.size(), 2u);
  const auto same = [](const Tensor& x, const Tensor& y) {
    return std::equal(x.data<float>(), x.data<float>() + x.numel(), y.data<float>());
  };
  EXPECT_TRUE(same(ad.modules[3].a, again.modules[3].a));
  EXPECT_FALSE(same(ad.modules[3].a, other.modules[3].a));
  EXPECT_TRUE(same(ad.find(1, LoraTarget::V)->a, only_v.find(1, LoraTarget::V)->a));
  EXPECT_EQ(only_v.find(1, LoraTarget::Q), nullptr);
}

TEST(LoraAdapter, RankZeroFailsBeforeAnyTensorIsMade) {
  LoraConfig c;
  c.rank = 0;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { init_lora_adapter(small_config(), RopeLayout::Interleaved, c, 1); }),
                       {"rank 0"}));
}

}  // namespace
}  // namespace pocketlora
