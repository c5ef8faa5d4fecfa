#pragma once
// Synthetic Llama models in the shapes of real 1B models (bench/model_layer_shapes.h): random weights, NF4 base as
// QLoRA loads it — for benchmarks whose cost depends on shapes, not values (bench train, bench generate).
#include <cstdint>
#include <string>

#include "host/model/llama_model.h"

namespace pocketlora::bench {

// What a synthetic 1B case adds to the shapes in model_layer_shapes.h (the same table as the torch script's).
struct SyntheticSpec {
  std::string name, torch_name;
  std::int64_t n_layers, n_heads, vocab;
  bool tied;
  double rope_theta;
};
// "tinyllama-1.1b" or "llama-3.2-1b"; nullptr for another name.
const SyntheticSpec* synthetic_spec(const std::string& name);
LlamaConfig synthetic_config(const SyntheticSpec& spec, std::int64_t layers, std::int64_t vocab);
// Uniform in [-scale, scale) from splitmix64 (reproducible; values do not matter for speed).
Tensor random_tensor(Shape shape, float scale, std::uint64_t seed);
// random_tensor's values as a deferred table: rows drawn when read, as a checkpoint's table is read from its
// mapping a chunk at a time (the host never holds it whole).
FrozenTensor deferred_random_table(Shape shape, float scale, std::uint64_t seed);
// A linear W [out, in] ~ U(+-sqrt(3/in)) quantized to NF4 with double quantization.
BaseLinear synthetic_nf4_linear(std::int64_t out, std::int64_t in, std::uint64_t seed, const std::string& name);
// The same, deferred: drawn and quantized when uploaded (BaseLinear::make).
BaseLinear deferred_nf4_linear(std::int64_t out, std::int64_t in, std::uint64_t seed, const std::string& name);
// `layers` layers of the model, the linears and the embedding table / head deferred (the host holds neither the NF4
// base nor the table; each is made at upload).
LlamaModel synthetic_model(const SyntheticSpec& spec, std::int64_t layers, std::int64_t vocab);

}  // namespace pocketlora::bench
