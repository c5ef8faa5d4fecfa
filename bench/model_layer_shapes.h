#pragma once
// Linear-layer weight shapes W [N, K] = [out, in] of the 1B models the NF4 benchmarks run on.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

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

}  // namespace pocketlora::bench
