#include "host/model/llama_model.h"

#include "host/core/error.h"
#include "host/model/bnb4bit.h"
#include "host/model/llama_weights.h"

namespace pocketlora {

BaseQuant parse_base_quant(const std::string& s) {
  if (s == "none" || s == "f32") return BaseQuant::None;
  if (s == "nf4") return BaseQuant::Nf4;
  throw InvalidArgument("unknown base quantization '" + s + "' (expected none, f32 or nf4)");
}

BaseLinear BaseLinear::materialized() const {
  if (!is_deferred()) return *this;
  BaseLinear l = make();
  if (l.is_deferred() || l.is_nf4() != deferred_nf4 || l.shape() != deferred_shape)
    throw InternalError("deferred linear: made " + shape_str(l.shape()) + (l.is_nf4() ? " nf4" : " plain") +
                        ", declared " + shape_str(deferred_shape) + (deferred_nf4 ? " nf4" : " plain"));
  return l;
}

namespace {

BaseLinear convert_linear(const Tensor& f32, BaseQuant quant, const std::string& name) {
  BaseLinear l;
  if (quant == BaseQuant::Nf4)
    l.nf4 = quantize_nf4({f32.data<float>(), static_cast<std::size_t>(f32.numel())}, f32.shape(), true, name);
  else
    l.plain = f32;
  return l;
}

BaseLinear deferred_linear(const DeferredTensor& t, BaseQuant quant, const std::string& name) {
  BaseLinear l;
  l.deferred_shape = t.shape;
  l.deferred_nf4 = quant == BaseQuant::Nf4;
  l.make = [t, quant, name] { return convert_linear(t.read(), quant, name); };
  return l;
}

BaseLinear deferred_linear(const DeferredNf4& t) {
  BaseLinear l;
  l.deferred_shape = t.shape;
  l.deferred_nf4 = true;
  l.deferred_double_quant = t.double_quant;
  l.make = [read = t.read] {
    BaseLinear m;
    m.nf4 = read();
    return m;
  };
  return l;
}

// Read now (resident) or a reader of the mapped file's rows (deferred).
FrozenTensor frozen(const DeferredTensor& t, BaseLoad load) {
  return load == BaseLoad::Resident ? FrozenTensor(t.read()) : FrozenTensor::deferred(t.shape, t.read_rows);
}

LlamaModel from_source(const LlamaWeightSource& w, BaseQuant quant, BaseLoad load) {
  LlamaModel m;
  m.config = w.config;
  m.quant = quant;
  m.rope_layout = RopeLayout::Interleaved;  // the weight source reads every plain source in interleaved rows
  m.source = w.source;
  m.tok_embeddings = frozen(w.at("tok_embeddings"), load);
  m.norm = frozen(w.at("norm"), load);
  m.output = w.tied_output || w.config.tied_embeddings ? m.tok_embeddings : frozen(w.at("output"), load);
  for (std::int64_t l = 0; l < w.config.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    LlamaLayer layer;
    layer.attn_norm = frozen(w.at(p + "attention_norm"), load);
    layer.ffn_norm = frozen(w.at(p + "ffn_norm"), load);
    const auto linear = [&](const std::string& name) { return deferred_linear(w.at(p + name), quant, p + name); };
    layer.wq = linear("attention.wq");
    layer.wk = linear("attention.wk");
    layer.wv = linear("attention.wv");
    layer.wo = linear("attention.wo");
    layer.w_gate = linear("feed_forward.w1");
    layer.w_up = linear("feed_forward.w3");
    layer.w_down = linear("feed_forward.w2");
    m.layers.push_back(std::move(layer));
  }
  return m;
}

LlamaModel from_bnb4bit(Bnb4bitSource&& b, const std::filesystem::path& path, BaseLoad load) {
  LlamaModel m;
  m.config = b.config;
  m.source = ModelSource::Bnb4bit;
  m.quant = BaseQuant::Nf4;
  m.rope_layout = b.qk_layout;
  const std::string origin = "bnb-4bit checkpoint '" + path.string() + "'";
  auto other = [&](const std::string& name) -> FrozenTensor {
    auto it = b.others.find(name);
    if (it == b.others.end()) throw FormatError(origin + ": tensor '" + name + "' is missing");
    const Shape shape = it->second.shape();
    if (shape.empty()) throw FormatError(origin + ": tensor '" + name + "' is a scalar, expected a vector or matrix");
    return frozen({shape, [rows = b.rows_f32, name](std::int64_t first, std::int64_t count) {
                     return rows(name, first, count);
                   }},
                  load);
  };
  auto linear = [&](const std::string& name) {
    auto it = b.linears.find(name);
    if (it == b.linears.end()) throw FormatError(origin + ": NF4 linear '" + name + "' is missing");
    return deferred_linear(it->second);
  };
  m.tok_embeddings = other("model.embed_tokens.weight");
  m.norm = other("model.norm.weight");
  m.output = b.others.count("lm_head.weight") && !m.config.tied_embeddings ? other("lm_head.weight")
                                                                          : m.tok_embeddings;
  for (std::int64_t l = 0; l < m.config.n_layers; ++l) {
    const std::string h = "model.layers." + std::to_string(l) + ".";
    LlamaLayer layer;
    layer.attn_norm = other(h + "input_layernorm.weight");
    layer.ffn_norm = other(h + "post_attention_layernorm.weight");
    layer.wq = linear(h + "self_attn.q_proj.weight");
    layer.wk = linear(h + "self_attn.k_proj.weight");
    layer.wv = linear(h + "self_attn.v_proj.weight");
    layer.wo = linear(h + "self_attn.o_proj.weight");
    layer.w_gate = linear(h + "mlp.gate_proj.weight");
    layer.w_up = linear(h + "mlp.up_proj.weight");
    layer.w_down = linear(h + "mlp.down_proj.weight");
    m.layers.push_back(std::move(layer));
  }
  return m;
}

// Every tensor against the config, so a mismatched file fails at load with the tensor's name.
void check_model(const LlamaModel& m, const std::string& origin) {
  const auto& c = m.config;
  auto expect = [&](const std::string& name, const Shape& got, const Shape& want) {
    if (got != want)
      throw FormatError(origin + ": tensor '" + name + "' has shape " + shape_str(got) + ", the config implies " +
                        shape_str(want));
  };
  expect("tok_embeddings", m.tok_embeddings.shape(), {c.vocab_size, c.dim});
  expect("output", m.output.shape(), {c.vocab_size, c.dim});
  expect("norm", m.norm.shape(), {c.dim});
  const std::int64_t q_dim = c.n_heads * c.head_dim;
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    const auto& L = m.layers[l];
    const std::string p = "layer " + std::to_string(l) + " ";
    expect(p + "attn_norm", L.attn_norm.shape(), {c.dim});
    expect(p + "ffn_norm", L.ffn_norm.shape(), {c.dim});
    expect(p + "wq", L.wq.shape(), {q_dim, c.dim});
    expect(p + "wk", L.wk.shape(), {c.kv_dim(), c.dim});
    expect(p + "wv", L.wv.shape(), {c.kv_dim(), c.dim});
    expect(p + "wo", L.wo.shape(), {c.dim, q_dim});
    expect(p + "w_gate", L.w_gate.shape(), {c.hidden_dim, c.dim});
    expect(p + "w_up", L.w_up.shape(), {c.hidden_dim, c.dim});
    expect(p + "w_down", L.w_down.shape(), {c.dim, c.hidden_dim});
  }
}

}  // namespace

std::optional<LlamaModel> with_base_quant(const LlamaModel& m, BaseQuant quant) {
  if (m.source == ModelSource::Bnb4bit || m.quant == quant) return m;
  if (m.quant != BaseQuant::None || quant != BaseQuant::Nf4) return std::nullopt;
  LlamaModel out = m;
  out.quant = quant;
  for (std::size_t l = 0; l < out.layers.size(); ++l) {
    auto& L = out.layers[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    const std::pair<BaseLinear*, const char*> linears[] = {
        {&L.wq, "attention.wq"},    {&L.wk, "attention.wk"},    {&L.wv, "attention.wv"},   {&L.wo, "attention.wo"},
        {&L.w_gate, "feed_forward.w1"}, {&L.w_up, "feed_forward.w3"}, {&L.w_down, "feed_forward.w2"}};
    for (const auto& [lin, name] : linears) {
      if (!lin->is_deferred()) return std::nullopt;
      lin->deferred_nf4 = true;
      lin->make = [make = lin->make, name = p + name] { return convert_linear(make().plain, BaseQuant::Nf4, name); };
    }
  }
  return out;
}

LlamaModel load_llama_model(const std::filesystem::path& path, BaseQuant quant, BaseLoad load) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw IoError("model '" + path.string() + "': no such file or directory");
  LlamaModel m;
  try {
    m = is_bnb4bit_checkpoint(path) ? from_bnb4bit(open_bnb4bit(path), path, load)
                                    : from_source(open_llama_weights(path), quant, load);
  } catch (const ShapeError& e) {  // as load_llama_weights: a conversion's shape check means a bad file
    throw FormatError("checkpoint '" + path.string() + "': " + e.what());
  }
  check_model(m, "model '" + path.string() + "'");
  if (load == BaseLoad::Resident) try {
      for (auto& L : m.layers)
        for (BaseLinear* l : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) *l = l->materialized();
    } catch (const ShapeError& e) {
      throw FormatError("checkpoint '" + path.string() + "': " + e.what());
    }
  return m;
}

}  // namespace pocketlora
