#include "bench/synthetic_llama.h"

#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "bench/model_layer_shapes.h"
#include "host/core/error.h"
#include "host/core/nf4_quantize.h"
#include "host/util/splitmix64.h"

namespace pocketlora::bench {

const SyntheticSpec* synthetic_spec(const std::string& name) {
  static const std::vector<SyntheticSpec> specs = {{"tinyllama-1.1b", "tinyllama", 22, 32, 32000, false, 10000.0},
                                                   {"llama-3.2-1b", "llama32-1b", 16, 32, 128256, true, 500000.0}};
  for (const auto& s : specs)
    if (s.name == name) return &s;
  return nullptr;
}

LlamaConfig synthetic_config(const SyntheticSpec& spec, std::int64_t layers, std::int64_t vocab) {
  std::int64_t dim = 0, hidden = 0, kv = 0;
  for (const auto& L : model_layers(spec.name)) {
    if (L.layer == "q/o") dim = L.N;
    if (L.layer == "gate/up") hidden = L.N;
    if (L.layer == "k/v") kv = L.N;
  }
  LlamaConfig c;
  c.dim = dim;
  c.hidden_dim = hidden;
  c.n_layers = layers;
  c.n_heads = spec.n_heads;
  c.head_dim = dim / spec.n_heads;
  c.n_kv_heads = kv / c.head_dim;
  c.vocab_size = vocab;
  c.max_seq_len = 2048;
  c.rope_theta = spec.rope_theta;  // Llama 3's frequency scaling is left out: it changes no shape or cost
  c.tied_embeddings = spec.tied;
  c.source = "synthetic";
  c.validate(spec.name);
  return c;
}

namespace {
// n values uniform in [-scale, scale) from splitmix64 at `state`.
void fill_uniform(float* p, std::int64_t n, float scale, std::uint64_t state) {
  for (std::int64_t i = 0; i < n; ++i)
    p[i] = scale * (static_cast<float>(splitmix64(state) >> 40) * (2.0f / 16777216.0f) - 1.0f);
}
}  // namespace

Tensor random_tensor(Shape shape, float scale, std::uint64_t seed) {
  Tensor t = Tensor::zeros(std::move(shape));
  fill_uniform(t.data<float>(), t.numel(), scale, seed);
  return t;
}

FrozenTensor deferred_random_table(Shape shape, float scale, std::uint64_t seed) {
  const std::int64_t cols = shape_numel(shape) / shape.at(0);
  return FrozenTensor::deferred(shape, [shape, cols, scale, seed](std::int64_t first, std::int64_t count) {
    if (first < 0 || count < 0 || first > shape[0] - count)
      throw ShapeError("synthetic table " + shape_str(shape) + ": rows [" + std::to_string(first) + ", " +
                       std::to_string(first + count) + ") out of range");
    Shape rows = shape;
    rows[0] = count;
    Tensor t = Tensor::zeros(rows);
    // splitmix64 adds a constant per draw, so the state before element first * cols is known without the draws.
    fill_uniform(t.data<float>(), t.numel(), scale, seed + static_cast<std::uint64_t>(first * cols) * 0x9e3779b97f4a7c15ull);
    return t;
  });
}

// A linear W [out, in] ~ U(±sqrt(3/in)) (unit-variance outputs), quantized to NF4 with double quantization as
// QLoRA loads it; the f32 weight lives only while this one linear is built, so host RAM holds NF4 bytes only.
BaseLinear synthetic_nf4_linear(std::int64_t out, std::int64_t in, std::uint64_t seed, const std::string& name) {
  const Tensor w = random_tensor({out, in}, std::sqrt(3.0f / static_cast<float>(in)), seed);
  BaseLinear l;
  l.nf4 = quantize_nf4({w.data<float>(), static_cast<std::size_t>(w.numel())}, w.shape(), true, name);
  return l;
}

// The same linear deferred (BaseLinear::make), as load_llama_model(..., BaseLoad::Deferred) holds a checkpoint's:
// drawn and quantized when uploaded, so the host never holds the NF4 base.
BaseLinear deferred_nf4_linear(std::int64_t out, std::int64_t in, std::uint64_t seed, const std::string& name) {
  BaseLinear l;
  l.deferred_shape = {out, in};
  l.deferred_nf4 = true;
  l.make = [=] { return synthetic_nf4_linear(out, in, seed, name); };
  return l;
}

// `layers` layers of the model; the linears deferred.
LlamaModel synthetic_model(const SyntheticSpec& spec, std::int64_t layers, std::int64_t vocab) {
  LlamaModel m;
  m.config = synthetic_config(spec, layers, vocab);
  const LlamaConfig& c = m.config;
  m.quant = BaseQuant::Nf4;
  m.tok_embeddings = deferred_random_table({c.vocab_size, c.dim}, 0.02f, 1);
  const Tensor ones = Tensor::from_vector(std::vector<float>(static_cast<std::size_t>(c.dim), 1.0f), {c.dim});
  m.norm = ones;
  m.output = c.tied_embeddings ? m.tok_embeddings : deferred_random_table({c.vocab_size, c.dim}, 0.02f, 3);
  for (std::int64_t i = 0; i < layers; ++i) {
    LlamaLayer L;
    L.attn_norm = ones.clone();
    L.ffn_norm = ones.clone();
    const std::uint64_t s = 100 + 10 * static_cast<std::uint64_t>(i);
    const std::string p = fmt::format("layers.{}.", i);
    L.wq = deferred_nf4_linear(c.n_heads * c.head_dim, c.dim, s, p + "wq");
    L.wk = deferred_nf4_linear(c.kv_dim(), c.dim, s + 1, p + "wk");
    L.wv = deferred_nf4_linear(c.kv_dim(), c.dim, s + 2, p + "wv");
    L.wo = deferred_nf4_linear(c.dim, c.n_heads * c.head_dim, s + 3, p + "wo");
    L.w_gate = deferred_nf4_linear(c.hidden_dim, c.dim, s + 4, p + "w_gate");
    L.w_up = deferred_nf4_linear(c.hidden_dim, c.dim, s + 5, p + "w_up");
    L.w_down = deferred_nf4_linear(c.dim, c.hidden_dim, s + 6, p + "w_down");
    m.layers.push_back(std::move(L));
  }
  return m;
}

}  // namespace pocketlora::bench
