#include "host/model/llama_forward.h"

#include <algorithm>

#include "host/core/error.h"

namespace pocketlora {

namespace {

// A deferred linear is converted here, uploaded and dropped before the next one: the host holds one linear's
// conversion at a time (on the CPU backend the NF4 codes move into the backend, not copied). A backend that only
// sizes weights (the planner) gets the shape.
BackendLinear upload_linear(Backend& be, const BaseLinear& l, const std::string& name) {
  BackendLinear b;
  if (l.is_deferred()) {
    if (!be.needs_weight_values()) {
      if (!l.is_nf4()) {
        b.plain = be.alloc(l.shape(), DType::F32, Lifetime::Weights, name);
        return b;
      }
      Nf4Quantized shape_only;
      shape_only.shape = l.shape();
      shape_only.double_quant = l.deferred_double_quant;
      b.nf4 = be.upload_nf4(shape_only, name);
      return b;
    }
    BaseLinear v = l.materialized();
    if (v.is_nf4()) b.nf4 = be.adopt_nf4(std::move(*v.nf4), name);
    else b.plain = be.upload(v.plain, Lifetime::Weights, name);
    return b;
  }
  if (l.is_nf4()) b.nf4 = be.upload_nf4(*l.nf4, name);
  else b.plain = be.upload(l.plain, Lifetime::Weights, name);
  return b;
}

// A table, head or norm stored as `dtype` on the backend. Resident values are uploaded as they are (write()
// converts); a deferred tensor's rows are read from the checkpoint and written a chunk of at most
// kFrozenChunkBytes f32 at a time, so the host never holds more of it (the planner reads none).
constexpr std::int64_t kFrozenChunkBytes = std::int64_t{16} << 20;

BTensor upload_frozen(Backend& be, const FrozenTensor& t, DType dtype, const std::string& name) {
  if (!t.is_deferred()) {
    if (dtype == t.dtype()) return be.upload(t.values(), Lifetime::Weights, name);
    const BTensor bt = be.alloc(t.shape(), dtype, Lifetime::Weights, name);
    be.write(bt, t.values());
    return bt;
  }
  const BTensor bt = be.alloc(t.shape(), dtype, Lifetime::Weights, name);
  if (!be.needs_weight_values()) return bt;
  const std::int64_t rows = t.shape()[0], row_bytes = static_cast<std::int64_t>(t.nbytes()) / std::max<std::int64_t>(rows, 1);
  const std::int64_t chunk = std::max<std::int64_t>(1, kFrozenChunkBytes / std::max<std::int64_t>(row_bytes, 1));
  for (std::int64_t r = 0; r < rows; r += chunk) be.write_rows(bt, r, t.rows(r, std::min(chunk, rows - r)));
  return bt;
}

}  // namespace

BackendLlama upload_llama(Backend& be, const LlamaModel& m, std::optional<DType> table_dtype) {
  if (table_dtype && *table_dtype != DType::F32 && *table_dtype != DType::F16)
    throw InvalidArgument(std::string("upload_llama: embedding/head dtype ") + dtype_name(*table_dtype) +
                          " — expected f32 or f16");
  const auto table = [&](const FrozenTensor& t, const std::string& name) {
    return upload_frozen(be, t, table_dtype.value_or(t.dtype()), name);
  };
  const auto norm = [&](const FrozenTensor& t, const std::string& name) {
    return upload_frozen(be, t, t.dtype(), name);
  };
  BackendLlama b;
  b.config = m.config;
  b.rope_layout = m.rope_layout;
  b.activations = m.tok_embeddings.dtype();
  b.tok_embeddings = table(m.tok_embeddings, "tok_embeddings");
  b.norm = norm(m.norm, "norm");
  b.output = m.output.same_as(m.tok_embeddings) ? b.tok_embeddings : table(m.output, "output");
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    const auto& L = m.layers[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    BackendLlama::Layer u;
    u.attn_norm = norm(L.attn_norm, p + "attention_norm");
    u.ffn_norm = norm(L.ffn_norm, p + "ffn_norm");
    u.wq = upload_linear(be, L.wq, p + "wq");
    u.wk = upload_linear(be, L.wk, p + "wk");
    u.wv = upload_linear(be, L.wv, p + "wv");
    u.wo = upload_linear(be, L.wo, p + "wo");
    u.w_gate = upload_linear(be, L.w_gate, p + "w_gate");
    u.w_up = upload_linear(be, L.w_up, p + "w_up");
    u.w_down = upload_linear(be, L.w_down, p + "w_down");
    b.layers.push_back(u);
  }
  return b;
}

void linear_forward(Backend& be, const BTensor& x, const BackendLinear& w, const BTensor& y, bool accumulate) {
  MatmulOptions opt;
  opt.accumulate = accumulate;
  if (w.is_nf4()) be.nf4_matmul(x, w.nf4, y, opt);
  else be.matmul(x, w.plain, y, opt);
}

void linear_lora_forward(Backend& be, const BTensor& x, const BackendLinear& w, const LinearLora& lora,
                         const BTensor& y, bool accumulate) {
  MatmulOptions opt;
  opt.accumulate = accumulate;
  if (!w.is_nf4()) return be.matmul_lora(x, w.plain, lora.a, lora.b, y, lora.t, lora.scale, opt);
  be.nf4_matmul(x, w.nf4, y, opt);
  LoraOptions lo;
  lo.scale = lora.scale;
  be.lora_forward(x, lora.a, lora.b, y, lora.t, BTensor{}, lo);
}

void record_llama_forward(Backend& be, const BackendLlama& m, const BTensor& ids, const BTensor& positions,
                          const BTensor& rope, const BTensor& logits, const LlamaForwardHooks& hooks) {
  const auto& c = m.config;
  const std::int64_t T = ids.numel(), rows = logits.dim(0);
  if (rows < 1 || rows > T || logits.shape != Shape{rows, c.vocab_size})
    throw ShapeError("record_llama_forward: logits " + shape_str(logits.shape) + " for " + std::to_string(T) +
                     " tokens — expected [rows, " + std::to_string(c.vocab_size) + "] with 1 <= rows <= T");
  const std::int64_t q_dim = c.n_heads * c.head_dim, kv = c.kv_dim();
  auto step = [&](const Shape& s, const std::string& name) { return be.alloc(s, DType::F32, Lifetime::Step, name); };
  const BTensor x = step({T, c.dim}, "x"), xn = step({T, c.dim}, "x normed"), rstd = step({T}, "rstd");
  const BTensor q = step({T, q_dim}, "q"), k = step({T, kv}, "k"), v = step({T, kv}, "v");
  const BTensor att = step({T, q_dim}, "attention out");
  const BTensor g = step({T, c.hidden_dim}, "gate"), u = step({T, c.hidden_dim}, "up");
  const BTensor h = step({T, c.hidden_dim}, "swiglu");
  const BTensor q3 = be.reshape(q, {T, c.n_heads, c.head_dim}), att3 = be.reshape(att, {T, c.n_heads, c.head_dim});
  const BTensor k3 = be.reshape(k, {T, c.n_kv_heads, c.head_dim}), v3 = be.reshape(v, {T, c.n_kv_heads, c.head_dim});
  const BTensor lse = hooks.attention ? BTensor{} : step({T, c.n_heads}, "lse");
  const auto eps = static_cast<float>(c.rms_eps);

  be.embedding(ids, m.tok_embeddings, x);
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    const auto& L = m.layers[l];
    // The o and down projections add onto the residual stream x in their own dispatch (accumulate), not through
    // a separate add: two dispatches fewer per layer, which is most of a decode step's cost on a dispatch-bound GPU.
    const auto linear = [&](const BTensor& in, const BackendLinear& w, LlamaLinear which, const BTensor& out,
                            bool accumulate = false) {
      const LinearLora* lora = hooks.fused_lora ? hooks.fused_lora(l, which) : nullptr;
      if (lora) linear_lora_forward(be, in, w, *lora, out, accumulate);
      else linear_forward(be, in, w, out, accumulate);
      if (hooks.after_linear) hooks.after_linear(l, which, in, out);
    };
    be.rmsnorm(x, L.attn_norm, xn, rstd, eps);
    linear(xn, L.wq, LlamaLinear::Q, q);
    linear(xn, L.wk, LlamaLinear::K, k);
    linear(xn, L.wv, LlamaLinear::V, v);
    be.rope(q3, positions, rope, m.rope_layout, false);
    be.rope(k3, positions, rope, m.rope_layout, false);
    if (hooks.attention) hooks.attention(l, q3, k3, v3, att3);
    else be.attention(q3, k3, v3, nullptr, att3, lse, {});
    linear(att, L.wo, LlamaLinear::O, x, true);
    be.rmsnorm(x, L.ffn_norm, xn, rstd, eps);
    linear(xn, L.w_gate, LlamaLinear::Gate, g);
    linear(xn, L.w_up, LlamaLinear::Up, u);
    be.swiglu(g, u, h);
    linear(h, L.w_down, LlamaLinear::Down, x, true);
  }
  // Only the rows whose logits are wanted go through the final norm and the head. Their own normed rows and rstd:
  // a view of rstd's last row would start at an offset the device may not bind.
  const BTensor x_out = rows == T ? x : be.view_rows(x, T - rows, rows);
  const BTensor xn_out = rows == T ? xn : step({rows, c.dim}, "x normed (logit rows)");
  const BTensor rstd_out = rows == T ? rstd : step({rows}, "rstd (logit rows)");
  be.rmsnorm(x_out, m.norm, xn_out, rstd_out, eps);
  be.matmul(xn_out, m.output, logits, {});
}

Tensor llama_forward_logits(Backend& be, const BackendLlama& m, std::span<const std::int32_t> tokens) {
  const auto& c = m.config;
  const auto T = static_cast<std::int64_t>(tokens.size());
  if (T == 0) throw InvalidArgument("llama_forward_logits: no tokens");
  Tensor ids_host = Tensor::zeros({T}, DType::I32), pos_host = Tensor::zeros({T}, DType::I32);
  std::copy(tokens.begin(), tokens.end(), ids_host.data<std::int32_t>());
  for (std::int64_t i = 0; i < T; ++i) pos_host.data<std::int32_t>()[i] = static_cast<std::int32_t>(i);
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      throw InvalidArgument("llama_forward_logits: token id " + std::to_string(tokens[i]) + " at position " +
                            std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");

  const BTensor ids = be.upload(ids_host, Lifetime::Step, "token ids");
  const BTensor positions = be.upload(pos_host, Lifetime::Step, "positions");
  const BTensor table = be.upload(rope_table(T, c.rope_inv_freq()), Lifetime::Step, "rope table");
  const BTensor logits = be.alloc({T, c.vocab_size}, DType::F32, Lifetime::Step, "logits");
  be.begin();
  record_llama_forward(be, m, ids, positions, table, logits);
  be.end();
  be.run();
  Tensor out = be.read(logits);
  be.free_step();
  return out;
}

}  // namespace pocketlora
