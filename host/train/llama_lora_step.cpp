#include "host/train/llama_lora_step.h"

#include "host/core/error.h"

namespace pocketlora {

namespace {

// dx (+)= dy · W for a frozen base linear W [out, in] (dy [M, out], dx [M, in]).
void linear_backward(Backend& be, const BackendLinear& w, const BTensor& dy, const BTensor& dx, bool accumulate) {
  MatmulOptions opt;
  opt.accumulate = accumulate;
  if (w.is_nf4()) {
    be.nf4_matmul_backward(w.nf4, dy, dx, opt);
  } else {
    opt.trans_b = true;
    be.matmul(dy, w.plain, dx, opt);
  }
}

void check_module(const LoraModule& mod, const LlamaConfig& c, std::int64_t rank) {
  const auto [out, in] = lora_target_shape(c, mod.target);
  if (mod.a.shape() != Shape{rank, in} || mod.b.shape() != Shape{out, rank})
    throw ShapeError("LoRA module '" + mod.name() + "': A " + shape_str(mod.a.shape()) + ", B " +
                     shape_str(mod.b.shape()) + ", expected A " + shape_str({rank, in}) + ", B " +
                     shape_str({out, rank}) + " for this model");
}

}  // namespace

std::uint32_t lora_stream(std::int64_t layer, LoraTarget t) {
  return static_cast<std::uint32_t>(layer * kLoraTargetCount + static_cast<int>(t));
}

BackendLora upload_lora(Backend& be, const BackendLlama& m, const LoraAdapter& adapter) {
  adapter.config.validate();
  // The model's dtype (f32; f64 in gradient checks), whatever LoraStepOptions::activations is.
  const DType dt = m.activations;
  BackendLora bl;
  bl.config = adapter.config;
  bl.layers.resize(m.layers.size());
  for (const auto& mod : adapter.modules) {  // every module checked before anything is allocated
    if (mod.layer < 0 || mod.layer >= static_cast<std::int64_t>(m.layers.size()))
      throw ShapeError("LoRA module '" + mod.name() + "': the model has " + std::to_string(m.layers.size()) +
                       " layers");
    check_module(mod, m.config, adapter.rank_of(mod));
  }
  for (const auto& mod : adapter.modules) {
    BackendLoraModule& b = bl.layers[static_cast<std::size_t>(mod.layer)][static_cast<std::size_t>(mod.target)];
    b.a = be.upload(mod.a.to(dt), Lifetime::Weights, mod.tensor_name('A'));
    b.b = be.upload(mod.b.to(dt), Lifetime::Weights, mod.tensor_name('B'));
    b.da = be.alloc(mod.a.shape(), dt, Lifetime::Weights, mod.tensor_name('A') + ".grad");
    b.db = be.alloc(mod.b.shape(), dt, Lifetime::Weights, mod.tensor_name('B') + ".grad");
    b.scale = adapter.scale_of(mod);
  }
  return bl;
}

void write_lora(Backend& be, const BackendLora& lora, const LoraAdapter& adapter) {
  for (const auto& mod : adapter.modules) {
    const BackendLoraModule& b = lora.at(static_cast<std::size_t>(mod.layer), mod.target);
    if (!b) throw ShapeError("write_lora: module '" + mod.name() + "' is not on the backend");
    be.write(b.a, mod.a);
    be.write(b.b, mod.b);
  }
}

LoraAdapter read_lora_grads(Backend& be, const BackendLora& lora, const LoraAdapter& like) {
  LoraAdapter g;
  g.config = like.config;
  g.qk_layout = like.qk_layout;
  for (const auto& mod : like.modules) {
    const BackendLoraModule& b = lora.at(static_cast<std::size_t>(mod.layer), mod.target);
    if (!b) throw ShapeError("read_lora_grads: module '" + mod.name() + "' is not on the backend");
    g.modules.push_back({mod.layer, mod.target, be.read(b.da), be.read(b.db), mod.rank, mod.alpha});
  }
  return g;
}

LlamaLoraStep::LlamaLoraStep(Backend& be, const BackendLlama& m, const BackendLora& lora,
                             const LoraStepOptions& opt)
    : be_(be), m_(m), lora_(lora), opt_(opt) {
  const auto& c = m.config;
  if (opt.batch < 1 || opt.seq_len < 1)
    throw InvalidArgument("LlamaLoraStep: batch " + std::to_string(opt.batch) + " x seq_len " +
                          std::to_string(opt.seq_len) + " (both must be at least 1)");
  if (lora.layers.size() != m.layers.size())
    throw ShapeError("LlamaLoraStep: the adapter has " + std::to_string(lora.layers.size()) + " layers, the model " +
                     std::to_string(m.layers.size()));
  lora.config.validate();
  const std::int64_t N = tokens(), S = opt.seq_len, q_dim = c.n_heads * c.head_dim, kv = c.kv_dim();
  const std::int64_t head_rows = opt.logits_rows ? opt.logits_rows : N;
  if (head_rows < 1 || N % head_rows != 0)
    throw InvalidArgument("LlamaLoraStep: logits_rows " + std::to_string(opt.logits_rows) + " must divide the " +
                          std::to_string(N) + " tokens of the batch");
  // `step`: the model's dtype (the residual stream, its gradient, statistics, logits); `act`: the activations'.
  const DType dt = m.activations, adt = opt.activations.value_or(dt);
  if (adt != dt && adt != DType::F16)
    throw InvalidArgument(std::string("LlamaLoraStep: activations ") + dtype_name(adt) + " with a " + dtype_name(dt) +
                          " model: only f16 differs from the model's dtype");
  mixed_ = adt != dt;
  auto step = [&](const Shape& s, const std::string& name) { return be.alloc(s, dt, Lifetime::Step, name); };
  auto act = [&](const Shape& s, const std::string& name) { return be.alloc(s, adt, Lifetime::Step, name); };

  ids_ = be.alloc({N}, DType::I32, Lifetime::Step, "token ids");
  positions_ = be.alloc({N}, DType::I32, Lifetime::Step, "positions");
  Tensor pos = Tensor::zeros({N}, DType::I32);
  for (std::int64_t i = 0; i < N; ++i) pos.data<std::int32_t>()[i] = static_cast<std::int32_t>(i % S);
  be.write(positions_, pos);
  if (opt.segments) segments_ = be.alloc({N}, DType::I32, Lifetime::Step, "segment ids");
  rope_table_ = be.upload(rope_table(S, c.rope_inv_freq()), Lifetime::Step, "rope table");
  dropout_key_ = be.upload(lora_key_tensor({opt.dropout_seed, 0, 0}), Lifetime::Step, "LoRA dropout key");

  // Everything but x_in, for one layer (`p` names it) or, with checkpointing, for the set all layers share.
  auto layer_intermediates = [&](std::size_t l, const std::string& p) {
    LayerActivations a;
    a.xn_attn = act({N, c.dim}, p + "attention norm out");
    a.rstd_attn = step({N}, p + "attention norm rstd");
    a.q = act({N, q_dim}, p + "q");
    a.k = act({N, kv}, p + "k");
    a.v = act({N, kv}, p + "v");
    a.att = act({N, q_dim}, p + "attention out");
    a.lse = step({N, c.n_heads}, p + "attention lse");
    a.x_mid = step({N, c.dim}, p + "x mid");
    a.xn_ffn = act({N, c.dim}, p + "ffn norm out");
    a.rstd_ffn = step({N}, p + "ffn norm rstd");
    a.g = act({N, c.hidden_dim}, p + "gate");
    a.u = act({N, c.hidden_dim}, p + "up");
    a.h = act({N, c.hidden_dim}, p + "swiglu");
    if (!opt.checkpointing)
      for (LoraTarget t : kAllLoraTargets)
        if (const BackendLoraModule& mod = lora.at(l, t))
          a.lora_t[static_cast<std::size_t>(t)] = act({N, mod.a.shape[0]}, p + lora_target_name(t) + ".lora T");
    return a;
  };
  if (opt.checkpointing) {
    shared_acts_ = layer_intermediates(0, "layers (recomputed).");
    for (const auto& layer : lora.layers)
      for (LoraTarget t : kAllLoraTargets)
        if (const BackendLoraModule& mod = layer[static_cast<std::size_t>(t)]) {
          const auto key = std::make_pair(t, mod.a.shape[0]);
          if (!shared_lora_t_.count(key))
            shared_lora_t_[key] = act({N, key.second}, std::string("layers (recomputed).") + lora_target_name(t) +
                                                           ".lora T r" + std::to_string(key.second));
        }
  }
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    LayerActivations a = opt.checkpointing ? LayerActivations{} : layer_intermediates(l, p);
    a.x_in = step({N, c.dim}, p + "x in");
    acts_.push_back(a);
  }
  x_final_ = step({N, c.dim}, "x final");
  xn_final_ = act({N, c.dim}, "final norm out");
  rstd_final_ = step({N}, "final norm rstd");
  logits_ = step({head_rows, c.vocab_size}, "logits");
  dlogits_ = step({head_rows, c.vocab_size}, "dlogits");

  dx_ = step({N, c.dim}, "d x");
  dx_mid_ = step({N, c.dim}, "d x mid");
  dxn_ = act({N, c.dim}, "d norm out");
  dnorm_x_ = step({N, c.dim}, "d norm in");
  dnorm_w_ = step({c.dim}, "d norm weight (frozen, discarded)");
  dq_ = act({N, q_dim}, "d q");
  dk_ = act({N, kv}, "d k");
  dv_ = act({N, kv}, "d v");
  datt_ = act({N, q_dim}, "d attention out");
  dg_ = act({N, c.hidden_dim}, "d gate");
  du_ = act({N, c.hidden_dim}, "d up");
  dh_ = act({N, c.hidden_dim}, "d swiglu");
  proj_ = mixed_ ? act({N, c.dim}, "o / down projection out") : dx_mid_;
  if (mixed_) dres_ = act({N, c.dim}, "d x (activation dtype)");

  for (std::int64_t r0 = 0; r0 < N; r0 += head_rows) {
    head_xn_.push_back(head_rows == N ? xn_final_ : be.view_rows(xn_final_, r0, head_rows));
    head_dxn_.push_back(head_rows == N ? dxn_ : be.view_rows(dxn_, r0, head_rows));
  }

  const Shape q3{N, c.n_heads, c.head_dim}, kv3{N, c.n_kv_heads, c.head_dim};
  SequenceViews shared;
  shared.dq3 = be.reshape(dq_, q3);
  shared.dk3 = be.reshape(dk_, kv3);
  shared.dq = per_sequence(shared.dq3, q3);
  shared.dk = per_sequence(shared.dk3, kv3);
  shared.dv = per_sequence(dv_, kv3);
  shared.datt = per_sequence(datt_, q3);
  if (opt.segments) shared.segments = per_sequence(segments_, {N});
  for (const auto& a : opt.checkpointing ? std::vector<LayerActivations>{shared_acts_} : acts_) {
    SequenceViews v = shared;
    v.q3 = be.reshape(a.q, q3);
    v.k3 = be.reshape(a.k, kv3);
    v.q = per_sequence(v.q3, q3);
    v.k = per_sequence(v.k3, kv3);
    v.v = per_sequence(a.v, kv3);
    v.att = per_sequence(a.att, q3);
    v.lse = per_sequence(a.lse, {N, c.n_heads});
    views_.push_back(std::move(v));
  }
}

std::vector<BTensor> LlamaLoraStep::per_sequence(const BTensor& t, const Shape& shape) {
  const BTensor whole = t.shape == shape ? t : be_.reshape(t, shape);
  std::vector<BTensor> out;
  for (std::int64_t b = 0; b < opt_.batch; ++b) out.push_back(be_.view_rows(whole, b * opt_.seq_len, opt_.seq_len));
  return out;
}

const BTensor& LlamaLoraStep::residual_grad_input(const BTensor& dr) {
  if (!mixed_) return dr;
  be_.add(dr, dr, dres_, 0.0f);  // dres = dr + 0 * dr: the dtype conversion, in one element-wise dispatch
  return dres_;
}

void LlamaLoraStep::write_dropout_key(std::uint32_t step, std::uint32_t micro) {
  be_.write(dropout_key_, lora_key_tensor({opt_.dropout_seed, step, micro}));
}

LoraOptions LlamaLoraStep::lora_options(std::size_t layer, LoraTarget t, bool dropout) const {
  LoraOptions o;
  o.scale = lora_.at(layer, t).scale;
  o.dropout = dropout ? lora_.config.dropout : 0.0f;
  o.stream = lora_stream(static_cast<std::int64_t>(layer), t);
  return o;
}

// --- one linear: y = x·Wᵀ + s·drop(x)·Aᵀ·Bᵀ, and its backward ----------------------------------------------------

void LlamaLoraStep::linear_lora_forward(std::size_t layer, LoraTarget t, const BTensor& x, const BackendLinear& w,
                                        const BTensor& y, const BTensor& lora_t, bool dropout) {
  linear_forward(be_, x, w, y);
  if (const BackendLoraModule& mod = lora_.at(layer, t))
    be_.lora_forward(x, mod.a, mod.b, y, lora_t, dropout_key_, lora_options(layer, t, dropout));
}

void LlamaLoraStep::linear_lora_backward(std::size_t layer, LoraTarget t, const BTensor& x, const BackendLinear& w,
                                         const BTensor& lora_t, const BTensor& dy, const BTensor& dx,
                                         bool accumulate_dx) {
  linear_backward(be_, w, dy, dx, accumulate_dx);
  if (const BackendLoraModule& mod = lora_.at(layer, t)) {
    // dX adds to the base linear's; dA/dB add to what the step zeroed (or earlier micro-batches left).
    LoraOptions o = lora_options(layer, t, true);
    o.accumulate_grads = true;
    be_.lora_backward(x, mod.a, mod.b, lora_t, dy, dx, mod.da, mod.db, dropout_key_, o);
  }
}

// --- attention, once per sequence -----------------------------------------------------------------------------

void LlamaLoraStep::attention_forward(std::size_t layer) {
  const SequenceViews& v = layer_views(layer);
  be_.rope(v.q3, positions_, rope_table_, m_.rope_layout, false);
  be_.rope(v.k3, positions_, rope_table_, m_.rope_layout, false);
  for (std::size_t b = 0; b < v.q.size(); ++b)
    be_.attention(v.q[b], v.k[b], v.v[b], opt_.segments ? &v.segments[b] : nullptr, v.att[b], v.lse[b], {});
}

void LlamaLoraStep::attention_backward(std::size_t layer) {
  const SequenceViews& v = layer_views(layer);
  for (std::size_t b = 0; b < v.q.size(); ++b)
    be_.attention_backward(v.q[b], v.k[b], v.v[b], opt_.segments ? &v.segments[b] : nullptr, v.att[b], v.lse[b],
                           v.datt[b], v.dq[b], v.dk[b], v.dv[b], {});
  // RoPE is a rotation: its backward rotates the gradient by the opposite angle.
  be_.rope(v.dq3, positions_, rope_table_, m_.rope_layout, true);
  be_.rope(v.dk3, positions_, rope_table_, m_.rope_layout, true);
}

// --- the model ----------------------------------------------------------------------------------------------------

void LlamaLoraStep::record_forward() {
  if (head_chunks() != 1)
    throw InvalidArgument("LlamaLoraStep::record_forward: the head runs in " + std::to_string(head_chunks()) +
                          " chunks; record the parts (record_body_forward, record_head_forward per chunk)");
  record_body_forward();
  record_head_forward(0);
}

void LlamaLoraStep::record_backward() {
  if (head_chunks() != 1)
    throw InvalidArgument("LlamaLoraStep::record_backward: the head runs in " + std::to_string(head_chunks()) +
                          " chunks; record the parts (record_head_backward per chunk, record_body_backward)");
  record_head_backward(0);
  record_body_backward();
}

LlamaLoraStep::LayerActivations LlamaLoraStep::layer_acts(std::size_t layer) const {
  if (!opt_.checkpointing) return acts_[layer];
  LayerActivations a = shared_acts_;
  a.x_in = acts_[layer].x_in;
  for (LoraTarget t : kAllLoraTargets)
    if (const BackendLoraModule& mod = lora_.at(layer, t))
      a.lora_t[static_cast<std::size_t>(t)] = shared_lora_t_.at({t, mod.a.shape[0]});
  return a;
}

void LlamaLoraStep::record_body_forward(bool dropout) {
  be_.embedding(ids_, m_.tok_embeddings, acts_.front().x_in);
  for (std::size_t l = 0; l < acts_.size(); ++l) record_layer_forward(l, dropout, false);
  be_.rmsnorm(x_final_, m_.norm, xn_final_, rstd_final_, static_cast<float>(m_.config.rms_eps));
}

void LlamaLoraStep::record_layer_forward(std::size_t l, bool dropout, bool recompute) {
  const auto eps = static_cast<float>(m_.config.rms_eps);
  const auto& L = m_.layers[l];
  const LayerActivations a = layer_acts(l);
  auto T = [&](LoraTarget t) { return a.lora_t[static_cast<std::size_t>(t)]; };
  be_.rmsnorm(a.x_in, L.attn_norm, a.xn_attn, a.rstd_attn, eps);
  linear_lora_forward(l, LoraTarget::Q, a.xn_attn, L.wq, a.q, T(LoraTarget::Q), dropout);
  linear_lora_forward(l, LoraTarget::K, a.xn_attn, L.wk, a.k, T(LoraTarget::K), dropout);
  linear_lora_forward(l, LoraTarget::V, a.xn_attn, L.wv, a.v, T(LoraTarget::V), dropout);
  attention_forward(l);
  // proj_ (dx_mid_ itself unless the activations are mixed) holds the projections' outputs: free until the backward
  // (and, recomputing, until this layer's).
  linear_lora_forward(l, LoraTarget::O, a.att, L.wo, proj_, T(LoraTarget::O), dropout);
  be_.add(a.x_in, proj_, a.x_mid, 1.0f);
  be_.rmsnorm(a.x_mid, L.ffn_norm, a.xn_ffn, a.rstd_ffn, eps);
  linear_lora_forward(l, LoraTarget::Gate, a.xn_ffn, L.w_gate, a.g, T(LoraTarget::Gate), dropout);
  linear_lora_forward(l, LoraTarget::Up, a.xn_ffn, L.w_up, a.u, T(LoraTarget::Up), dropout);
  be_.swiglu(a.g, a.u, a.h);
  if (recompute) {
    // The backward needs down's LoRA T, not the layer's output: no base GEMM, and the LoRA term that lora_forward
    // adds into proj_ (free scratch until the backward writes it) is discarded.
    if (const BackendLoraModule& mod = lora_.at(l, LoraTarget::Down))
      be_.lora_forward(a.h, mod.a, mod.b, proj_, T(LoraTarget::Down), dropout_key_,
                       lora_options(l, LoraTarget::Down, dropout));
    return;
  }
  const BTensor& x_out = l + 1 < acts_.size() ? acts_[l + 1].x_in : x_final_;
  linear_lora_forward(l, LoraTarget::Down, a.h, L.w_down, proj_, T(LoraTarget::Down), dropout);
  be_.add(a.x_mid, proj_, x_out, 1.0f);
}

// The output head (frozen, tied or not): logits = xn · outputᵀ, and d xn = dlogits · output, one chunk of rows.
void LlamaLoraStep::record_head_forward(std::int64_t chunk) {
  be_.matmul(head_xn_.at(static_cast<std::size_t>(chunk)), m_.output, logits_, {});
}

void LlamaLoraStep::record_head_backward(std::int64_t chunk) {
  MatmulOptions head;
  head.trans_b = true;
  be_.matmul(dlogits_, m_.output, head_dxn_.at(static_cast<std::size_t>(chunk)), head);
}

void LlamaLoraStep::record_body_backward() {
  if (!opt_.accumulate_grads)
    for (const auto& layer : lora_.layers)
      for (const auto& mod : layer)
        if (mod) {
          be_.fill(mod.da, 0.0f);
          be_.fill(mod.db, 0.0f);
        }
  // dxn_ holds d(final norm out) from the head chunks; through the (frozen) norm into the residual stream.
  be_.rmsnorm_backward(x_final_, m_.norm, rstd_final_, dxn_, dx_, dnorm_w_, false);
  for (std::size_t l = acts_.size(); l-- > 0;) {
    // Checkpointing: layer l's activations again, from its saved input (dx_ holds d x_out; dx_mid_ is free).
    if (opt_.checkpointing) record_layer_forward(l, true, true);
    const auto& L = m_.layers[l];
    const LayerActivations a = layer_acts(l);
    auto T = [&](LoraTarget t) { return a.lora_t[static_cast<std::size_t>(t)]; };
    // MLP: x_out = x_mid + down(swiglu(gate(xn), up(xn))), xn = rmsnorm(x_mid). dx holds d x_out.
    linear_lora_backward(l, LoraTarget::Down, a.h, L.w_down, T(LoraTarget::Down), residual_grad_input(dx_), dh_, false);
    be_.swiglu_backward(a.g, a.u, dh_, dg_, du_);
    linear_lora_backward(l, LoraTarget::Gate, a.xn_ffn, L.w_gate, T(LoraTarget::Gate), dg_, dxn_, false);
    linear_lora_backward(l, LoraTarget::Up, a.xn_ffn, L.w_up, T(LoraTarget::Up), du_, dxn_, true);
    be_.rmsnorm_backward(a.x_mid, L.ffn_norm, a.rstd_ffn, dxn_, dnorm_x_, dnorm_w_, false);
    be_.add(dx_, dnorm_x_, dx_mid_, 1.0f);
    // Attention: x_mid = x_in + o(attention(rope(q(xn)), rope(k(xn)), v(xn))), xn = rmsnorm(x_in).
    linear_lora_backward(l, LoraTarget::O, a.att, L.wo, T(LoraTarget::O), residual_grad_input(dx_mid_), datt_, false);
    attention_backward(l);
    linear_lora_backward(l, LoraTarget::Q, a.xn_attn, L.wq, T(LoraTarget::Q), dq_, dxn_, false);
    linear_lora_backward(l, LoraTarget::K, a.xn_attn, L.wk, T(LoraTarget::K), dk_, dxn_, true);
    linear_lora_backward(l, LoraTarget::V, a.xn_attn, L.wv, T(LoraTarget::V), dv_, dxn_, true);
    be_.rmsnorm_backward(a.x_in, L.attn_norm, a.rstd_attn, dxn_, dnorm_x_, dnorm_w_, false);
    be_.add(dx_mid_, dnorm_x_, dx_, 1.0f);
  }
}

}  // namespace pocketlora
