#include "host/infer/decoder.h"

#include <cmath>

#include "host/core/error.h"

namespace pocketlora {

namespace {

// Prompt lengths vary per request; past this many recorded programs the step state is released and re-recorded.
constexpr std::size_t kMaxRecordedPrograms = 4;

LoraTarget target_of(LlamaLinear l) { return static_cast<LoraTarget>(static_cast<int>(l)); }

}  // namespace

Decoder::Decoder(Backend& be, BackendLlama base, std::int64_t context)
    : be_(be), base_(std::move(base)), context_(context ? context : base_.config.max_seq_len) {
  const auto& c = base_.config;
  if (context_ <= 0)
    throw InvalidArgument("Decoder: context length " + std::to_string(context_) +
                          " — pass one, the model declares none (max_seq_len 0)");
  if (base_.activations != DType::F32)
    throw InvalidArgument(std::string("Decoder: activations ") + dtype_name(base_.activations) +
                          " — generation runs in f32");
  rope_ = be_.upload(rope_table(context_, c.rope_inv_freq()), Lifetime::Weights, "decoder rope table");
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "kv cache layer " + std::to_string(l);
    const Shape s{context_, c.n_kv_heads, c.head_dim};
    const BTensor k = be_.alloc(s, DType::F32, Lifetime::Weights, p + " k");
    const BTensor v = be_.alloc(s, DType::F32, Lifetime::Weights, p + " v");
    cache_.emplace_back(k, v);
  }
}

std::size_t Decoder::add_adapter(const LoraAdapter& adapter, const std::string& name) {
  const auto& c = base_.config;
  if (adapter.qk_layout != base_.rope_layout)
    throw InvalidArgument("Decoder::add_adapter: adapter '" + name + "' has q/k rows in " +
                          (adapter.qk_layout == RopeLayout::Interleaved ? "interleaved" : "rotate_half") +
                          " order, the base model in the other one");
  ResidentAdapter r;
  r.name = name;
  r.modules.resize(static_cast<std::size_t>(c.n_layers));
  for (const auto& m : adapter.modules) {
    if (m.layer < 0 || m.layer >= c.n_layers)
      throw ShapeError("Decoder::add_adapter: adapter '" + name + "' module " + m.name() + " names layer " +
                       std::to_string(m.layer) + " of a " + std::to_string(c.n_layers) + "-layer model");
    const auto [out, in] = lora_target_shape(c, m.target);
    const std::int64_t rank = adapter.rank_of(m);
    if (m.a.shape() != Shape{rank, in} || m.b.shape() != Shape{out, rank})
      throw ShapeError("Decoder::add_adapter: adapter '" + name + "' " + m.name() + ": A " + shape_str(m.a.shape()) +
                       ", B " + shape_str(m.b.shape()) + ", expected A [" + std::to_string(rank) + ", " +
                       std::to_string(in) + "], B [" + std::to_string(out) + ", " + std::to_string(rank) + "]");
    const std::string p = "adapter " + name + " " + m.name();
    auto& slot = r.modules[static_cast<std::size_t>(m.layer)][static_cast<std::size_t>(m.target)];
    slot = {be_.upload(m.a.to(DType::F32), Lifetime::Weights, p + ".A"),
            be_.upload(m.b.to(DType::F32), Lifetime::Weights, p + ".B"), adapter.scale_of(m)};
  }
  adapters_.push_back(std::move(r));
  return adapters_.size() - 1;
}

void Decoder::release_programs() {
  if (programs_.empty()) return;
  be_.free_step();
  programs_.clear();
}

void Decoder::start(const std::vector<AdapterUse>& uses) {
  for (const auto& u : uses) {
    if (u.adapter >= adapters_.size())
      throw InvalidArgument("Decoder::start: adapter " + std::to_string(u.adapter) + " of " +
                            std::to_string(adapters_.size()) + " loaded");
    if (!std::isfinite(u.scale))
      throw InvalidArgument("Decoder::start: adapter '" + adapters_[u.adapter].name + "' scale is not finite");
  }
  // The scales are recorded into the programs (LoRA's alpha): another selection records them anew.
  if (uses != uses_) release_programs();
  uses_ = uses;
  position_ = 0;
}

const Decoder::Recorded& Decoder::recorded(std::int64_t T, std::int64_t rows) {
  const auto key = std::make_pair(T, rows);
  if (auto it = programs_.find(key); it != programs_.end()) return it->second;
  if (programs_.size() >= kMaxRecordedPrograms) release_programs();
  const auto& c = base_.config;
  Recorded r;
  r.ids = be_.alloc({T}, DType::I32, Lifetime::Step, "token ids");
  r.positions = be_.alloc({T}, DType::I32, Lifetime::Step, "positions");
  r.logits = be_.alloc({rows, c.vocab_size}, DType::F32, Lifetime::Step, "logits");
  // One LoRA intermediate [T, r] per rank, shared by every adapted linear of that rank (they run one after another).
  std::map<std::int64_t, BTensor> lora_t;
  for (const auto& u : uses_)
    for (const auto& layer : adapters_[u.adapter].modules)
      for (const ResidentModule& m : layer)
        if (const std::int64_t rank = m.a ? m.a.shape[0] : 0; rank && !lora_t.count(rank))
          lora_t[rank] = be_.alloc({T, rank}, DType::F32, Lifetime::Step, "lora T r" + std::to_string(rank));
  // The first adapter in use with a module on a linear goes into the linear itself (one pass where the backend
  // fuses them: Backend::matmul_lora), any further ones after it.
  std::map<std::pair<std::size_t, int>, std::pair<LinearLora, std::size_t>> fused;  // (layer, linear) -> (lora, use)
  for (std::size_t l = 0; l < static_cast<std::size_t>(c.n_layers); ++l)
    for (int lin = 0; lin < kLoraTargetCount; ++lin)
      for (std::size_t i = 0; i < uses_.size(); ++i) {
        const ResidentModule& m = adapters_[uses_[i].adapter].modules[l][static_cast<std::size_t>(lin)];
        if (!m.a || uses_[i].scale == 0.0f) continue;
        fused[{l, lin}] = {LinearLora{m.a, m.b, lora_t.at(m.a.shape[0]), m.scale * uses_[i].scale}, i};
        break;
      }
  LlamaForwardHooks hooks;
  hooks.fused_lora = [&](std::size_t layer, LlamaLinear linear) -> const LinearLora* {
    const auto it = fused.find({layer, static_cast<int>(linear)});
    return it == fused.end() ? nullptr : &it->second.first;
  };
  hooks.after_linear = [&](std::size_t layer, LlamaLinear linear, const BTensor& x, const BTensor& y) {
    const auto it = fused.find({layer, static_cast<int>(linear)});
    for (std::size_t i = 0; i < uses_.size(); ++i) {
      if (it != fused.end() && it->second.second == i) continue;
      const AdapterUse& u = uses_[i];
      const ResidentModule& m = adapters_[u.adapter].modules[layer][static_cast<std::size_t>(target_of(linear))];
      if (!m.a || u.scale == 0.0f) continue;
      LoraOptions opt;
      opt.scale = m.scale * u.scale;
      be_.lora_forward(x, m.a, m.b, y, lora_t.at(m.a.shape[0]), BTensor{}, opt);
    }
  };
  hooks.attention = [&](std::size_t layer, const BTensor& q, const BTensor& k, const BTensor& v, const BTensor& out) {
    const auto& [kc, vc] = cache_[layer];
    be_.kv_cache_write(k, v, r.positions, kc, vc);
    be_.kv_cache_attention(q, kc, vc, r.positions, out, 0.0f);
  };
  be_.begin();
  record_llama_forward(be_, base_, r.ids, r.positions, rope_, r.logits, hooks);
  r.program = be_.end();
  return programs_.emplace(key, r).first->second;
}

Tensor Decoder::forward(std::span<const std::int32_t> tokens, bool all_logits) {
  const auto& c = base_.config;
  const auto T = static_cast<std::int64_t>(tokens.size());
  if (T == 0) throw InvalidArgument("Decoder::forward: no tokens");
  if (position_ + T > context_)
    throw InvalidArgument("Decoder::forward: " + std::to_string(T) + " tokens at position " +
                          std::to_string(position_) + " would pass the context length of " + std::to_string(context_) +
                          " positions");
  Tensor ids = Tensor::zeros({T}, DType::I32), pos = Tensor::zeros({T}, DType::I32);
  for (std::int64_t i = 0; i < T; ++i) {
    const std::int32_t id = tokens[static_cast<std::size_t>(i)];
    if (id < 0 || id >= c.vocab_size)
      throw InvalidArgument("Decoder::forward: token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                            std::to_string(c.vocab_size) + ")");
    ids.data<std::int32_t>()[i] = id;
    pos.data<std::int32_t>()[i] = static_cast<std::int32_t>(position_ + i);
  }
  const Recorded& r = recorded(T, all_logits ? T : 1);
  be_.write(r.ids, ids);
  be_.write(r.positions, pos);
  be_.run(r.program);
  position_ += T;
  return be_.read(r.logits);
}

}  // namespace pocketlora
