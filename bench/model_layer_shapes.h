#pragma once
// Linear-layer weight shapes W [N, K] = [out, in] of the 1B models the NF4 benchmarks run on.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace pocketlora::bench {

struct LayerShape {
  std::string model, layer;
  std::int64_t N, K;
};

inline std::vector<LayerShape> model_layers(const std::string& model) {
  if (model == "tinyllama-1.1b")  // hidden 2048, intermediate 5632, 32 heads, 4 kv heads (head_dim 64)
    return {{model, "q/o", 2048, 2048}, {model, "k/v", 256, 2048}, {model, "gate/up", 5632, 2048},
            {model, "down", 2048, 5632}};
  if (model == "llama-3.2-1b")  // hidden 2048, intermediate 8192, 32 heads, 8 kv heads (head_dim 64)
    return {{model, "q/o", 2048, 2048}, {model, "k/v", 512, 2048}, {model, "gate/up", 8192, 2048},
            {model, "down", 2048, 8192}};
  throw std::runtime_error("unknown model '" + model + "' (tinyllama-1.1b, llama-3.2-1b)");
}

// What the NF4 layer benchmarks (`bench nf4`, `bench cpu-nf4`) take from the command line; each sets its defaults.
struct Nf4BenchArgs {
  std::string models = "tinyllama-1.1b,llama-3.2-1b";
  std::string ms;
  std::string layers;  // empty: all
  int reps = 3;
  bool dx = true;
  std::string out;
};

inline void add_nf4_bench_options(CLI::App& sub, Nf4BenchArgs& a) {
  sub.add_option("--models", a.models, "Comma list")->capture_default_str();
  sub.add_option("--m", a.ms, "Comma list of token counts M")->capture_default_str();
  sub.add_option("--layers", a.layers, "Comma list among q/o,k/v,gate/up,down (default all)");
  sub.add_option("--reps", a.reps, "Timed repetitions")->check(CLI::PositiveNumber);
  sub.add_flag("!--no-dx", a.dx, "Skip the input-gradient pass");
  sub.add_option("--out", a.out, "JSON output path")->capture_default_str();
}

}  // namespace pocketlora::bench
