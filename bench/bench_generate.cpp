// `pocketlora bench generate`: generation speed of the decoder (host/infer/decoder.h) on the CPU and Vulkan
// backends — prompt processing (one prefill program over the whole prompt) and decoding (one token per replay of
// the recorded decode step) as separate tokens/s, each without and with a LoRA adapter (rank 8 on all seven linears
// of every layer), so the adapter's cost is measured in the same run.
//   stories260k     the real stories260K (llama2.c file), f32 base (--quant nf4 for an NF4 base)
//   tinyllama-1.1b  synthetic weights in TinyLlama-1.1B's shapes, NF4 base, f16 embedding table and head on Vulkan;
//                   --layers N builds N of its 22 layers (figures labelled with the depth they ran at)
// Prefill: median of --reps prefills after one warm-up; decode: median per-token time over --decode tokens, split
// over the --reps rounds, each after a warm-up token. The base and the adapted selection alternate round by round.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_registry.h"
#include "bench/bench_util.h"
#include "bench/synthetic_llama.h"
#include "host/backend/backend.h"
#include "host/core/error.h"
#include "host/infer/decoder.h"
#include "host/infer/sampler.h"
#include "host/ref/blas.h"
#include "host/train/lora_adapter.h"
#include "host/util/splitmix64.h"

namespace pocketlora::bench {
namespace {

// Targets of issue 11 on this workplace's machine (docs/INFERENCE.md).
constexpr double kLavapipeStoriesDecodeTarget = 120;  // tokens/s
constexpr double kCpuStoriesDecodeTarget = 7000;      // tokens/s
constexpr double kAdapterCostTarget = 0.15;           // fraction of decode speed

struct GenerateBenchArgs {
  std::string cases = "stories260k,tinyllama-1.1b";
  std::string backends = "cpu,vulkan";
  std::string quant = "none";  // stories260k's base
  int layers = 1;              // of tinyllama-1.1b; 0: full depth
  int prompt = 128, decode = 64, reps = 3;
  int big_prompt = 64, big_decode = 8;
  std::string data;
  std::string out = "bench-generate.json";
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// An adapter on every linear with B random (an untrained B = 0 costs the same, but makes nothing to look at).
LoraAdapter bench_adapter(const LlamaModel& m) {
  LoraConfig cfg;
  cfg.rank = 8;
  cfg.alpha = 16;
  LoraAdapter a = init_lora_adapter(m.config, m.rope_layout, cfg, 3);
  std::uint64_t state = 5;
  for (auto& mod : a.modules)
    for (std::int64_t i = 0; i < mod.b.numel(); ++i)
      mod.b.data<float>()[i] = 0.01f * (static_cast<float>(splitmix64(state) >> 40) / 16777216.0f - 0.5f);
  return a;
}

// Medians, and the fastest decode step: on a shared machine the median moves with the load (one decode step of
// stories260K on lavapipe took 3.7-21 ms within one run at load 10), the fastest step much less.
struct Speed {
  double prefill_tok_s = 0, decode_tok_s = 0, prefill_ms = 0, decode_ms = 0, best_decode_tok_s = 0;
};

struct Samples {
  std::vector<double> pre, dec;
};

// One round of one selection: a prefill (timed unless it is the warm-up), then `decode` tokens timed after one
// untimed token. Switching the selection drops the recorded programs (Decoder::start), so a timed prefill comes
// after an untimed one that records it, and the first decode step records the step's program.
void time_round(Decoder& d, const std::vector<AdapterUse>& uses, const std::vector<std::int32_t>& prompt, int decode,
                bool time_prefill, Samples& out) {
  d.start(uses);
  if (time_prefill) {
    d.forward(prompt);
    d.start(uses);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor logits = d.forward(prompt);
  if (time_prefill) out.pre.push_back(seconds_since(t0));
  std::int32_t next = greedy_token({logits.data<float>(), static_cast<std::size_t>(logits.numel())});
  for (int i = 0; i < decode + 1; ++i) {
    const auto t1 = std::chrono::steady_clock::now();
    const Tensor l = d.forward(std::span<const std::int32_t>(&next, 1));
    if (i > 0) out.dec.push_back(seconds_since(t1));
    next = greedy_token({l.data<float>(), static_cast<std::size_t>(l.numel())});
  }
}

Speed speed_of(const Samples& s, std::size_t prompt_tokens) {
  Speed v;
  v.prefill_ms = median(s.pre) * 1e3;
  v.decode_ms = median(s.dec) * 1e3;
  v.prefill_tok_s = static_cast<double>(prompt_tokens) / median(s.pre);
  v.decode_tok_s = 1.0 / median(s.dec);
  v.best_decode_tok_s = 1.0 / *std::min_element(s.dec.begin(), s.dec.end());
  return v;
}

// The base and the adapted selection timed in alternating rounds (warm-up, then --reps rounds each, the --decode
// tokens split over them), so a change of machine load during the run falls on both alike and the adapter's cost
// compares steps from the same minutes instead of two halves of the run.
std::pair<Speed, Speed> time_generation_pair(Decoder& d, const std::vector<AdapterUse>& adapted,
                                             const std::vector<std::int32_t>& prompt, int decode, int reps) {
  Samples plain, with;
  for (int r = 0; r <= reps; ++r) {
    const int tokens = r == 0 ? 1 : decode / reps + (r <= decode % reps ? 1 : 0);
    time_round(d, {}, prompt, tokens, r > 0, plain);
    time_round(d, adapted, prompt, tokens, r > 0, with);
  }
  return {speed_of(plain, prompt.size()), speed_of(with, prompt.size())};
}

int run(GenerateBenchArgs a) {
  if (a.data.empty()) {
    const char* env = std::getenv("POCKETLORA_DATA");
    a.data = env && *env ? env : "../shared/data";
  }
  Table table({"case", "layers", "backend", "base", "adapter", "prompt", "prefill ms", "prompt tok/s", "decode ms",
               "decode tok/s", "best tok/s", "adapter cost", "target"});
  nlohmann::json results = nlohmann::json::array();
  for (const std::string& name : split_csv(a.cases)) {
    LlamaModel model;
    std::string layers_label, base;
    int prompt_len = a.prompt, decode = a.decode;
    std::optional<DType> table_dtype;
    if (name == "stories260k") {
      model = load_llama_model(std::filesystem::path(a.data) / "models/stories260K/stories260K.bin",
                               parse_base_quant(a.quant));
      layers_label = std::to_string(model.config.n_layers);
      base = a.quant == "nf4" ? "nf4" : "f32";
    } else if (const SyntheticSpec* spec = synthetic_spec(name)) {
      const std::int64_t depth = a.layers > 0 ? a.layers : spec->n_layers;
      model = synthetic_model(*spec, depth, spec->vocab);
      layers_label = fmt::format("{}/{}", depth, spec->n_layers);
      base = "nf4";
      prompt_len = a.big_prompt;
      decode = a.big_decode;
      // Vulkan: the f32 head of a 32000 x 2048 vocabulary is over one 128 MiB binding, so f16 there; the CPU
      // backend widens f16 to f32 on every call (a 65M-element head per token), so f32 there.
      table_dtype = DType::F16;
    } else {
      throw InvalidArgument("bench generate: unknown case '" + name + "' (stories260k, tinyllama-1.1b)");
    }
    std::vector<std::int32_t> prompt(static_cast<std::size_t>(prompt_len));
    std::uint64_t state = 11;
    prompt[0] = 1;
    for (std::size_t i = 1; i < prompt.size(); ++i)
      prompt[i] = static_cast<std::int32_t>(3 + splitmix64(state) % static_cast<std::uint64_t>(model.config.vocab_size - 3));
    const LoraAdapter adapter = bench_adapter(model);
    for (const std::string& backend : split_csv(a.backends)) {
      auto be = make_backend(parse_backend_kind(backend));
      const bool f16_tables = table_dtype && be->kind() == BackendKind::Vulkan;
      Decoder d(*be, upload_llama(*be, model, f16_tables ? table_dtype : std::nullopt), prompt_len + decode + 2);
      const std::size_t ai = d.add_adapter(adapter, "bench r8");
      const auto [plain, with] = time_generation_pair(d, {{ai, 1.0f}}, prompt, decode, a.reps);
      // Of the median and of the best step (the less noisy one on a loaded machine).
      const double cost = 1.0 - with.decode_tok_s / plain.decode_tok_s;
      const double best_cost = 1.0 - with.best_decode_tok_s / plain.best_decode_tok_s;
      const bool stories = name == "stories260k" && base == "f32";
      const double target = !stories ? 0 : backend == "vulkan" ? kLavapipeStoriesDecodeTarget : kCpuStoriesDecodeTarget;
      for (const auto& [label, s] : {std::pair<std::string, Speed>{"none", plain}, {"r8 all", with}}) {
        const bool adapted = label != "none";
        std::string verdict = "-";
        if (adapted)
          verdict = fmt::format("cost <= 15%: median {}, best {}", cost <= kAdapterCostTarget ? "met" : "NOT met",
                                best_cost <= kAdapterCostTarget ? "met" : "NOT met");
        else if (target > 0)
          verdict = fmt::format(">= {:.0f} tok/s: median {}, best {}", target, s.decode_tok_s >= target ? "met" : "NOT met",
                                s.best_decode_tok_s >= target ? "met" : "NOT met");
        table.row({name, layers_label, be->describe().substr(0, 24), base, label, std::to_string(prompt_len),
                   fmt::format("{:.1f}", s.prefill_ms), fmt::format("{:.0f}", s.prefill_tok_s),
                   fmt::format("{:.3f}", s.decode_ms), fmt::format("{:.1f}", s.decode_tok_s),
                   fmt::format("{:.1f}", s.best_decode_tok_s),
                   adapted ? fmt::format("{:.1f}% / {:.1f}%", 100 * cost, 100 * best_cost) : "-", verdict});
        results.push_back({{"case", name},
                           {"layers", layers_label},
                           {"backend", backend},
                           {"device", be->describe()},
                           {"base", base},
                           {"adapter", label},
                           {"prompt_tokens", prompt_len},
                           {"decode_tokens", decode},
                           {"prefill_ms", s.prefill_ms},
                           {"prompt_tokens_per_s", s.prefill_tok_s},
                           {"decode_ms_per_token", s.decode_ms},
                           {"decode_tokens_per_s", s.decode_tok_s},
                           {"best_decode_tokens_per_s", s.best_decode_tok_s},
                           {"adapter_cost", adapted ? nlohmann::json(cost) : nlohmann::json()},
                           {"adapter_cost_best", adapted ? nlohmann::json(best_cost) : nlohmann::json()},
                           {"decode_target_tokens_per_s", target > 0 && !adapted ? nlohmann::json(target) : nlohmann::json()}});
      }
    }
  }
  std::string load_end;
  {
    std::ifstream la("/proc/loadavg");
    la >> load_end;
  }
  fmt::print("\nGeneration: prompt processing (median of prefills) and decode (median and best per token), greedy; "
             "adapter = LoRA r 8 on all seven linears of every layer; adapter cost = decode time lost, median / best\n");
  table.print();
  fmt::print("load average at end: {}\n", load_end);
  write_json(a.out, {{"benchmark", "generate"},
                     {"threads", ref::cpu_threads()},
                     {"load_average_end", load_end},
                     {"results", results}});
  return 0;
}

BenchRegistration register_bench_generate("generate",
                      "Prompt-processing and decode tokens/s of the decoder, with and without a LoRA adapter",
                      [](CLI::App& sub) {
                        auto a = std::make_shared<GenerateBenchArgs>();
                        sub.add_option("--cases", a->cases, "Comma list among stories260k,tinyllama-1.1b")
                            ->capture_default_str();
                        sub.add_option("--backends", a->backends, "Comma list among cpu,vulkan")->capture_default_str();
                        sub.add_option("--quant", a->quant, "stories260k base: none (f32) or nf4")->capture_default_str();
                        sub.add_option("--layers", a->layers, "Layers of tinyllama-1.1b to build (0: all 22)")
                            ->check(CLI::NonNegativeNumber)
                            ->capture_default_str();
                        sub.add_option("--prompt", a->prompt, "Prompt tokens, stories260k")
                            ->check(CLI::PositiveNumber)
                            ->capture_default_str();
                        sub.add_option("--decode", a->decode, "Decoded tokens timed, stories260k")
                            ->check(CLI::PositiveNumber)
                            ->capture_default_str();
                        sub.add_option("--big-prompt", a->big_prompt, "Prompt tokens, tinyllama-1.1b")
                            ->check(CLI::PositiveNumber)
                            ->capture_default_str();
                        sub.add_option("--big-decode", a->big_decode, "Decoded tokens timed, tinyllama-1.1b")
                            ->check(CLI::PositiveNumber)
                            ->capture_default_str();
                        sub.add_option("--reps", a->reps, "Timed rounds per selection (a prefill and decode/reps tokens each)")->check(CLI::PositiveNumber)->capture_default_str();
                        sub.add_option("--data", a->data, "shared/data directory (default: $POCKETLORA_DATA, else ../shared/data)");
                        sub.add_option("--out", a->out, "JSON output path")->capture_default_str();
                        return [a] { return run(*a); };
                      });

}  // namespace
}  // namespace pocketlora::bench
