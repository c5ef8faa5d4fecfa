// The decoder (host/infer/decoder.h) on stories260K, on the CPU backend and, where Vulkan is built, on the Vulkan
// backend: adapters change the logits exactly as base + s·B·A would (against an independent host f64 forward),
// an untrained adapter changes nothing, switching adapters between sequences equals a fresh decoder, and the KV
// cache (prefill, then one token at a time) reproduces run.c's greedy ids and the full-sequence logits.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <cstring>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/adapters/adapter_export.h"
#include "host/adapters/peft_export.h"
#include "host/core/error.h"
#include "host/eval/peft_lora_adapter.h"
#include "host/infer/decoder.h"
#include "host/ref/cpu_backend.h"
#include "infer/host_llama_f64.h"
#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/ops/vulkan_backend.h"
#endif

namespace pocketlora {
namespace {

using test::data_path;

const char* const kModel = "models/stories260K/stories260K.bin";
const char* const kIds = "models/stories260K/expected/runc_t0_n200.ids.json";

// BOS + 200 greedy ids of llama2.c's run.c at temperature 0 from an empty prompt.
std::vector<std::int32_t> runc_greedy_ids() {
  const auto j = nlohmann::json::parse(std::ifstream(data_path(kIds)));
  return j.at("tokens_bos_plus_200").get<std::vector<std::int32_t>>();
}

// An adapter on every linear with A as PEFT initialises it and B drawn uniformly in [-b, b] (0: untrained).
LoraAdapter random_adapter(const LlamaModel& m, std::int64_t rank, float alpha, bool rslora, std::uint64_t seed,
                           float b) {
  LoraConfig cfg;
  cfg.rank = rank;
  cfg.alpha = alpha;
  cfg.rslora = rslora;
  LoraAdapter a = init_lora_adapter(m.config, m.rope_layout, cfg, seed);
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  std::uniform_real_distribution<float> u(-b, b);
  for (auto& mod : a.modules)
    for (std::int64_t i = 0; i < mod.b.numel(); ++i) mod.b.data<float>()[i] = b == 0 ? 0.0f : u(rng);
  return a;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double worst = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double d = std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]);
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst;
}

double max_abs_diff(const Tensor& got, const std::vector<std::vector<double>>& want) {
  double worst = 0;
  const std::int64_t V = got.dim(1);
  for (std::int64_t t = 0; t < got.dim(0); ++t)
    for (std::int64_t i = 0; i < V; ++i) {
      const double d = std::fabs(got.data<float>()[t * V + i] - want[static_cast<std::size_t>(t)][static_cast<std::size_t>(i)]);
      worst = std::isnan(d) ? INFINITY : std::max(worst, d);
    }
  return worst;
}

bool bit_identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), static_cast<std::size_t>(a.numel()) * 4) == 0;
}

std::int32_t argmax(const Tensor& logits) {
  const float* p = logits.data<float>();
  std::int64_t best = 0;
  for (std::int64_t i = 1; i < logits.numel(); ++i)
    if (p[i] > p[best]) best = i;
  return static_cast<std::int32_t>(best);
}

const std::vector<std::int32_t> kPrompt = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};

using MakeBackend = std::function<std::unique_ptr<Backend>()>;

// Each check below runs on one backend; the TESTs call it for the CPU backend and, where present, Vulkan.
void untrained_adapter_changes_no_logit(const MakeBackend& make) {
  const LlamaModel m = load_llama_model(data_path(kModel));
  auto be = make();
  Decoder d(*be, upload_llama(*be, m));
  const std::size_t untrained = d.add_adapter(random_adapter(m, 4, 8.0f, false, 7, 0.0f), "untrained");
  d.start();
  const Tensor base = d.forward(kPrompt, true);
  d.start({{untrained, 1.0f}});
  const Tensor with = d.forward(kPrompt, true);
  EXPECT_TRUE(bit_identical(base, with)) << "max |diff| " << max_abs_diff(base, with);
}

// Tolerance 1e-4 absolute on logits of magnitude <= ~20: f32 kernels (the forward reproduces PyTorch's fp32 logits
// within 1e-4, tests/backend/test_llama_forward.cpp) against the f64 forward of the merged weights.
void random_adapters_match_host_f64(const MakeBackend& make) {
  const LlamaModel m = load_llama_model(data_path(kModel));
  const LoraAdapter a = random_adapter(m, 4, 8.0f, false, 11, 0.05f);
  const LoraAdapter b = random_adapter(m, 8, 4.0f, /*rslora=*/true, 12, 0.05f);
  auto be = make();
  Decoder d(*be, upload_llama(*be, m));
  const std::size_t ia = d.add_adapter(a, "a"), ib = d.add_adapter(b, "b");
  const auto base = test::host_llama_logits_f64(m, kPrompt);
  const auto want_a = test::host_llama_logits_f64(m, kPrompt, {{&a, 1.0}});
  const auto want_ab = test::host_llama_logits_f64(m, kPrompt, {{&a, 0.5}, {&b, 2.0}});
  d.start({{ia, 1.0f}});
  const Tensor got_a = d.forward(kPrompt, true);
  d.start({{ia, 0.5f}, {ib, 2.0f}});
  const Tensor got_ab = d.forward(kPrompt, true);
  EXPECT_LT(max_abs_diff(got_a, want_a), 1e-4);
  EXPECT_LT(max_abs_diff(got_ab, want_ab), 1e-4);
  // The adapters really change the model (measured ~0.5-2 on these logits), far above the tolerance.
  EXPECT_GT(max_abs_diff(got_a, base), 0.05);
  EXPECT_GT(max_abs_diff(got_ab, base), 0.05);
}

// PEFT's per-module patterns, written to and read back from PEFT files: rank_pattern (q of layer 1 at rank 2,
// down of layer 3 at rank 6), alpha_pattern (v of layer 1 at 32, q of layer 3 at 3) and layers_to_transform
// {1, 3} (layers 0, 2, 4 keep the base's linears), rsLoRA on or off. The decoder must give the logits of the f64
// forward of W + s_m·B·A with each module's own s_m computed here, and of the same adapter merged by
// `pocketlora export --format merged` (a Hugging Face f32 directory) run as a plain model.
struct PatternedAdapter {
  PeftAdapter peft;
  LoraAdapter truth;  // the same tensors, one config rank/alpha: only A and B are read from it
  std::map<std::string, double> scale;  // "layers.1.q" -> alpha_m / r_m (rsLoRA: alpha_m / sqrt(r_m))
};

PatternedAdapter patterned_adapter(const LlamaModel& m, bool rslora) {
  PatternedAdapter p;
  p.peft.config = {4, 8, 0, rslora, {"q", "k", "v", "o", "gate", "up", "down"}, "stories260K"};
  p.peft.config.module_r = {{"layers.1.q", 2}, {"layers.3.down", 6}};
  p.peft.config.module_alpha = {{"layers.1.v", 32}, {"layers.3.q", 3}};
  p.peft.config.layers = {1, 3};
  p.truth.qk_layout = m.rope_layout;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-0.15f, 0.15f);
  for (std::int64_t l : p.peft.config.layers)
    for (LoraTarget t : kAllLoraTargets) {
      LoraModule mod;
      mod.layer = l;
      mod.target = t;
      const auto [out, in] = lora_target_shape(m.config, t);
      auto r_it = p.peft.config.module_r.find(mod.name());
      auto a_it = p.peft.config.module_alpha.find(mod.name());
      const std::int64_t r = r_it == p.peft.config.module_r.end() ? 4 : r_it->second;
      const double alpha = a_it == p.peft.config.module_alpha.end() ? 8.0 : a_it->second;
      p.scale[mod.name()] = alpha / (rslora ? std::sqrt(static_cast<double>(r)) : static_cast<double>(r));
      mod.a = Tensor::zeros({r, in});
      mod.b = Tensor::zeros({out, r});
      for (std::int64_t i = 0; i < mod.a.numel(); ++i) mod.a.data<float>()[i] = u(rng);
      for (std::int64_t i = 0; i < mod.b.numel(); ++i) mod.b.data<float>()[i] = u(rng);
      p.peft.tensors.emplace_back(mod.tensor_name('A'), mod.a);
      p.peft.tensors.emplace_back(mod.tensor_name('B'), mod.b);
      p.truth.modules.push_back(std::move(mod));
    }
  return p;
}

void patterned_adapter_matches_host_f64_and_merged(const MakeBackend& make) {
  const LlamaModel m = load_llama_model(data_path(kModel));
  for (bool rslora : {false, true}) {
    SCOPED_TRACE(rslora ? "rsLoRA" : "alpha / r");
    const PatternedAdapter p = patterned_adapter(m, rslora);
    test::TempDir tmp;
    const auto dir = tmp.path() / "adapter";
    write_peft_adapter(dir, p.peft, m.config, m.rope_layout);
    auto be = make();
    Decoder d(*be, upload_llama(*be, m));
    const std::size_t i = d.add_adapter(load_peft_lora_adapter(dir, m), "patterned");
    d.start({{i, 1.0f}});
    const Tensor got = d.forward(kPrompt, true);

    test::HostLoraDelta delta{&p.truth, 1.0, [&](std::int64_t layer, LoraTarget t) {
                                return p.scale.at("layers." + std::to_string(layer) + "." + lora_target_name(t));
                              }};
    EXPECT_LT(max_abs_diff(got, test::host_llama_logits_f64(m, kPrompt, {delta})), 1e-4);
    // One scale for every module (the patterns ignored), or no adapter at all, is far off: the patterns matter on
    // these logits, so the comparison above can tell.
    LoraAdapter truth_one = p.truth;
    truth_one.config.rank = 4;
    truth_one.config.alpha = 8;
    truth_one.config.rslora = rslora;
    const test::HostLoraDelta one_scale{&truth_one, 1.0, nullptr};
    EXPECT_GT(max_abs_diff(got, test::host_llama_logits_f64(m, kPrompt, {one_scale})), 1e-2);
    EXPECT_GT(max_abs_diff(got, test::host_llama_logits_f64(m, kPrompt)), 1e-2);

    ExportOptions eo;
    eo.model = data_path(kModel);
    eo.adapter = dir;
    eo.out = tmp.path() / "merged";
    eo.format = ExportFormat::Merged;
    export_adapter(eo);
    const LlamaModel merged = load_llama_model(eo.out);
    auto be2 = make();
    Decoder dm(*be2, upload_llama(*be2, merged));
    dm.start();
    EXPECT_LT(max_abs_diff(got, dm.forward(kPrompt, true)), 1e-4);
  }
}

// Programs are recorded per selection; switching back and forth must give what a decoder that only ever had that
// selection gives, bit for bit (same kernels in the same order).
void switching_adapters_equals_fresh_decoder(const MakeBackend& make) {
  const LlamaModel m = load_llama_model(data_path(kModel));
  const LoraAdapter a = random_adapter(m, 4, 8.0f, false, 21, 0.05f);
  const LoraAdapter b = random_adapter(m, 2, 2.0f, false, 22, 0.05f);
  auto be = make();
  Decoder d(*be, upload_llama(*be, m));
  const std::size_t ia = d.add_adapter(a, "a"), ib = d.add_adapter(b, "b");
  const std::vector<std::vector<AdapterUse>> requests = {{{ia, 1.0f}}, {{ib, 0.7f}}, {}, {{ia, 1.0f}}, {{ib, 1.3f}}};
  for (const auto& uses : requests) {
    d.start(uses);
    const Tensor prefill = d.forward(kPrompt);
    const Tensor step = d.forward(std::vector<std::int32_t>{argmax(prefill)});

    auto fresh_be = make();
    Decoder fresh(*fresh_be, upload_llama(*fresh_be, m));
    std::vector<AdapterUse> fresh_uses;
    if (!uses.empty()) {
      const bool is_a = uses[0].adapter == ia;
      fresh_uses.push_back({fresh.add_adapter(is_a ? a : b, is_a ? "a" : "b"), uses[0].scale});
    }
    fresh.start(fresh_uses);
    const Tensor want_prefill = fresh.forward(kPrompt);
    const Tensor want_step = fresh.forward(std::vector<std::int32_t>{argmax(want_prefill)});
    EXPECT_TRUE(bit_identical(prefill, want_prefill)) << max_abs_diff(prefill, want_prefill);
    EXPECT_TRUE(bit_identical(step, want_step)) << max_abs_diff(step, want_step);
  }
}

// Greedy decoding through the cache, one token at a time from BOS, reproduces run.c's 200 ids exactly.
void greedy_reproduces_runc(const MakeBackend& make) {
  const LlamaModel m = load_llama_model(data_path(kModel));
  const std::vector<std::int32_t> want = runc_greedy_ids();
  ASSERT_EQ(want.size(), 201u);
  auto be = make();
  Decoder d(*be, upload_llama(*be, m));
  d.start();
  std::vector<std::int32_t> got = {want[0]};
  while (got.size() < want.size()) got.push_back(argmax(d.forward(std::vector<std::int32_t>{got.back()})));
  EXPECT_EQ(got, want);
}

// Prefill 5 tokens, decode the next 11 one by one: each row equals the full-sequence forward's row within 1e-5 of
// the largest logit (f32 kernels; attention sums in another order: the cache kernel is an online softmax, and the
// GEMV shapes of one row differ from the GEMM's; measured 1.1e-5 absolute on logits up to ~15 on lavapipe).
void decode_matches_full_forward(const MakeBackend& make) {
  const LlamaModel m = load_llama_model(data_path(kModel));
  const std::vector<std::int32_t> ids = runc_greedy_ids();
  const std::vector<std::int32_t> seq(ids.begin(), ids.begin() + 16);
  auto be = make();
  const BackendLlama w = upload_llama(*be, m);
  const Tensor full = llama_forward_logits(*be, w, seq);
  Decoder d(*be, w);
  d.start();
  const Tensor pre = d.forward(std::span(seq).first(5), true);
  double worst = 0;
  const std::int64_t V = m.config.vocab_size;
  for (std::int64_t t = 0; t < 16; ++t) {
    Tensor row = t < 5 ? Tensor::zeros({1, V}) : d.forward(std::span(seq).subspan(static_cast<std::size_t>(t), 1));
    if (t < 5) std::memcpy(row.raw(), pre.data<float>() + t * V, static_cast<std::size_t>(V) * 4);
    for (std::int64_t i = 0; i < V; ++i)
      worst = std::max(worst, static_cast<double>(std::fabs(row.data<float>()[i] - full.data<float>()[t * V + i])));
  }
  double largest = 0;
  for (std::int64_t i = 0; i < full.numel(); ++i) largest = std::max(largest, double(std::fabs(full.data<float>()[i])));
  EXPECT_LT(worst, 1e-5 * largest) << "largest logit " << largest;
  EXPECT_EQ(d.position(), 16);
}

void context_overflow_names_limit(const MakeBackend& make) {
  const LlamaModel m = load_llama_model(data_path(kModel));
  auto be = make();
  Decoder d(*be, upload_llama(*be, m), 8);
  d.start();
  d.forward(std::span(kPrompt).first(6));
  const auto msg = test::error_of<InvalidArgument>([&] { d.forward(std::span(kPrompt).first(3)); });
  EXPECT_NE(msg.find("context length of 8"), std::string::npos) << msg;
  d.forward(std::span(kPrompt).first(2));  // exactly full is fine
  EXPECT_EQ(d.position(), 8);
}

MakeBackend cpu() {
  return [] { return std::unique_ptr<Backend>(new ref::CpuBackend()); };
}

#define DECODER_CPU_TEST(name)              \
  TEST(Decoder, name) {                     \
    POCKETLORA_REQUIRE_DATA(model_, kModel); \
    POCKETLORA_REQUIRE_DATA(ids_, kIds);     \
    name##_impl(cpu());                     \
  }

void UntrainedAdapterChangesNoLogit_impl(const MakeBackend& m) { untrained_adapter_changes_no_logit(m); }
void RandomAdaptersMatchHostF64_impl(const MakeBackend& m) { random_adapters_match_host_f64(m); }
void PatternedAdapterMatchesHostF64AndMerged_impl(const MakeBackend& m) {
  patterned_adapter_matches_host_f64_and_merged(m);
}
void SwitchingAdaptersEqualsFreshDecoder_impl(const MakeBackend& m) { switching_adapters_equals_fresh_decoder(m); }
void GreedyReproducesRunc_impl(const MakeBackend& m) { greedy_reproduces_runc(m); }
void DecodeMatchesFullForward_impl(const MakeBackend& m) { decode_matches_full_forward(m); }
void ContextOverflowNamesLimit_impl(const MakeBackend& m) { context_overflow_names_limit(m); }

DECODER_CPU_TEST(UntrainedAdapterChangesNoLogit)
DECODER_CPU_TEST(RandomAdaptersMatchHostF64)
DECODER_CPU_TEST(PatternedAdapterMatchesHostF64AndMerged)
DECODER_CPU_TEST(SwitchingAdaptersEqualsFreshDecoder)
DECODER_CPU_TEST(GreedyReproducesRunc)
DECODER_CPU_TEST(DecodeMatchesFullForward)
DECODER_CPU_TEST(ContextOverflowNamesLimit)

#if POCKETLORA_HAS_VULKAN
class VulkanDecoder : public test::GpuTest {
 protected:
  MakeBackend vulkan() {
    return [this] { return std::unique_ptr<Backend>(new ops::VulkanBackend(dev())); };
  }
};

// The QLoRA case: an NF4 base with an adapter, prefill then decode, on both backends. They decode identical NF4
// weights, so they agree within 1e-5 of the largest logit (f32 accumulation order), and pick the same tokens.
TEST_F(VulkanDecoder, Nf4BaseWithAdapterAgreesWithCpuBackend) {
  POCKETLORA_REQUIRE_DATA(model_, kModel);
  const LlamaModel m = load_llama_model(data_path(kModel), BaseQuant::Nf4);
  const LoraAdapter a = random_adapter(m, 4, 8.0f, false, 31, 0.05f);
  ref::CpuBackend cpu;
  ops::VulkanBackend gpu(dev());
  Decoder dc(cpu, upload_llama(cpu, m)), dg(gpu, upload_llama(gpu, m));
  const std::size_t ic = dc.add_adapter(a, "a"), ig = dg.add_adapter(a, "a");
  dc.start({{ic, 1.5f}});
  dg.start({{ig, 1.5f}});
  Tensor want = dc.forward(kPrompt), got = dg.forward(kPrompt);
  for (int step = 0; step < 8; ++step) {
    double largest = 0;
    for (std::int64_t i = 0; i < want.numel(); ++i) largest = std::max(largest, double(std::fabs(want.data<float>()[i])));
    EXPECT_LT(max_abs_diff(got, want), 1e-5 * largest) << "step " << step;
    const std::int32_t next = argmax(want);
    EXPECT_EQ(argmax(got), next) << "step " << step;
    want = dc.forward(std::vector<std::int32_t>{next});
    got = dg.forward(std::vector<std::int32_t>{next});
  }
}

#define DECODER_VULKAN_TEST(name)            \
  TEST_F(VulkanDecoder, name) {              \
    POCKETLORA_REQUIRE_DATA(model_, kModel); \
    POCKETLORA_REQUIRE_DATA(ids_, kIds);     \
    name##_impl(vulkan());                   \
  }

DECODER_VULKAN_TEST(UntrainedAdapterChangesNoLogit)
DECODER_VULKAN_TEST(RandomAdaptersMatchHostF64)
DECODER_VULKAN_TEST(PatternedAdapterMatchesHostF64AndMerged)
DECODER_VULKAN_TEST(SwitchingAdaptersEqualsFreshDecoder)
DECODER_VULKAN_TEST(GreedyReproducesRunc)
DECODER_VULKAN_TEST(DecodeMatchesFullForward)
DECODER_VULKAN_TEST(ContextOverflowNamesLimit)
#endif

}  // namespace
}  // namespace pocketlora
