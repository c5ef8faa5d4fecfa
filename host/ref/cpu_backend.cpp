#include "host/ref/cpu_backend.h"

#include <Eigen/Core>

#include <algorithm>
#include <cstring>
#include <new>
#include <optional>

#include "host/core/error.h"
#include "host/ref/attention.h"
#include "host/ref/kv_cache.h"
#include "host/ref/cross_entropy.h"
#include "host/ref/embedding.h"
#include "host/ref/lora.h"
#include "host/ref/matmul.h"
#include "host/ref/nf4_matmul.h"
#include "host/ref/optimizer.h"
#include "host/ref/rmsnorm.h"
#include "host/ref/rope.h"
#include "host/ref/swiglu.h"

namespace pocketlora::ref {

CpuBackend::CpuBackend() { Eigen::setNbThreads(1); }

std::string CpuBackend::describe() const { return "cpu (host/ref reference kernels)"; }

namespace {
// Cache-line aligned, so every planned offset (a multiple of the alignment) starts a line.
constexpr std::uint64_t kStepArenaAlignment = 64;
}  // namespace

std::uint64_t CpuBackend::memory_in_use() const {
  std::uint64_t bytes = step_arena_bytes_;
  std::vector<const void*> seen;  // views share their tensor's storage: count each buffer once
  for (const auto& s : slots_) {
    if (!s.t.defined() || in_step_arena(s.t.raw()) || std::find(seen.begin(), seen.end(), s.t.raw()) != seen.end())
      continue;
    seen.push_back(s.t.raw());
    bytes += s.t.nbytes();
  }
  for (const auto& w : nf4_)
    bytes += w.q.codes.size() + w.q.absmax.size() * 4 + w.q.dq.absmax_q.size() + w.q.dq.nested_absmax.size() * 4;
  return bytes;
}

Tensor& CpuBackend::at(const BTensor& h) {
  if (h.id == 0 || h.id > slots_.size())
    throw InvalidArgument("cpu backend: tensor handle " + std::to_string(h.id) + " does not exist");
  Slot& s = slots_[h.id - 1];
  if (!s.t.defined() && s.t.numel() != 0)
    throw InvalidArgument("cpu backend: tensor '" + s.name + "' was freed (step tensors live until free_step())");
  if (s.t.shape() != h.shape || s.t.dtype() != h.dtype)
    throw InvalidArgument("cpu backend: handle of '" + s.name + "' says " + shape_str(h.shape) + " " +
                          dtype_name(h.dtype) + ", the tensor is " + shape_str(s.t.shape()) + " " +
                          dtype_name(s.t.dtype()));
  return s.t;
}

const CpuBackend::Nf4Slot& CpuBackend::nf4_at(const BNf4& h) const {
  if (h.id == 0 || h.id > nf4_.size())
    throw InvalidArgument("cpu backend: NF4 handle " + std::to_string(h.id) + " ('" + h.name + "') does not exist");
  return nf4_[h.id - 1];
}

bool CpuBackend::in_step_arena(const void* p) const {
  const auto* b = reinterpret_cast<const std::byte*>(p);
  return step_arena_ && b >= step_arena_.get() && b < step_arena_.get() + step_arena_bytes_;
}

StepArenaLimits CpuBackend::step_arena_limits() const { return {kStepArenaAlignment, 0}; }

void CpuBackend::reserve_step(const StepLayout& layout) {
  placer_.reserve(layout, step_arena_limits(), "cpu backend");  // checks the layout before allocating what it asks for
  try {
    const std::size_t n = std::max<std::size_t>(layout.arena_bytes, 1);
    const std::align_val_t align{kStepArenaAlignment};
    std::shared_ptr<std::byte> arena(static_cast<std::byte*>(::operator new(n, align)),
                                     [align](std::byte* p) { ::operator delete(p, align); });
    // Zeroed once, as Tensor::zeros would give each tensor; after that a tensor starts with whatever the tensor
    // before it in those bytes left, as on a GPU.
    std::memset(arena.get(), 0, n);
    step_arena_ = std::move(arena);
  } catch (...) {
    placer_.clear();
    throw;
  }
  step_arena_bytes_ = layout.arena_bytes;
}

BTensor CpuBackend::alloc(const Shape& shape, DType dtype, Lifetime life, const std::string& name) {
  const std::optional<StepLayoutTensor> placed =
      life == Lifetime::Step ? placer_.place(name, shape, dtype) : std::nullopt;
  if (placed)
    slots_.push_back({Tensor::view(step_arena_.get() + placed->offset, shape, dtype, step_arena_), life, name,
                      !placed->host_written});
  else
    slots_.push_back({Tensor::zeros(shape, dtype), life, name});
  return {static_cast<std::uint32_t>(slots_.size()), shape, dtype};
}

BNf4 CpuBackend::upload_nf4(const Nf4Quantized& w, const std::string& name) {
  nf4_.push_back({w});
  return {static_cast<std::uint32_t>(nf4_.size()), w.shape, name};
}

BNf4 CpuBackend::adopt_nf4(Nf4Quantized&& w, const std::string& name) {
  const Shape shape = w.shape;
  nf4_.push_back({std::move(w)});
  return {static_cast<std::uint32_t>(nf4_.size()), shape, name};
}

void CpuBackend::write(const BTensor& dst, const Tensor& src) {
  Tensor& t = at(dst);
  if (slots_[dst.id - 1].no_host_writes) refuse_unplanned_host_write("cpu backend", slots_[dst.id - 1].name);
  if (src.shape() != t.shape())
    throw ShapeError("cpu backend: write of " + shape_str(src.shape()) + " into '" + slots_[dst.id - 1].name +
                     "' " + shape_str(t.shape()));
  t.copy_from(src);
}

void CpuBackend::write_rows(const BTensor& dst, std::int64_t row0, const Tensor& src) {
  Tensor& t = at(dst);
  if (slots_[dst.id - 1].no_host_writes) refuse_unplanned_host_write("cpu backend", slots_[dst.id - 1].name);
  check_write_rows("cpu backend", slots_[dst.id - 1].name, t.shape(), row0, src);
  t.slice_rows(row0, row0 + src.dim(0)).copy_from(src);
}

Tensor CpuBackend::read(const BTensor& src) { return at(src).clone(); }

void CpuBackend::free_step() {
  for (auto& s : slots_)
    if (s.life == Lifetime::Step) s.t = Tensor();
  placer_.clear();
  step_arena_.reset();
  step_arena_bytes_ = 0;
  programs_.clear();
  recording_ = false;
}

BTensor CpuBackend::reshape(const BTensor& t, const Shape& shape) {
  Slot view{at(t).reshape(shape), slots_[t.id - 1].life, slots_[t.id - 1].name, slots_[t.id - 1].no_host_writes};
  slots_.push_back(std::move(view));
  return {static_cast<std::uint32_t>(slots_.size()), shape, t.dtype};
}

BTensor CpuBackend::view_rows(const BTensor& t, std::int64_t row0, std::int64_t rows) {
  const Shape shape = view_rows_shape(slots_.at(t.id - 1).name, at(t).shape(), row0, rows);
  Slot view{at(t).slice_rows(row0, row0 + rows), slots_[t.id - 1].life, slots_[t.id - 1].name,
            slots_[t.id - 1].no_host_writes};
  slots_.push_back(std::move(view));
  return {static_cast<std::uint32_t>(slots_.size()), shape, t.dtype};
}

void CpuBackend::begin() {
  if (recording_) throw InvalidArgument("cpu backend: begin() while recording (call end() first)");
  programs_.emplace_back();
  recording_ = true;
}

Backend::Program CpuBackend::end() {
  if (!recording_) throw InvalidArgument("cpu backend: end() without begin()");
  recording_ = false;
  return static_cast<Program>(programs_.size());
}

void CpuBackend::run(Program p) {
  if (recording_) throw InvalidArgument("cpu backend: run() while recording (call end() first)");
  if (p == 0 || p > programs_.size())
    throw InvalidArgument("cpu backend: program " + std::to_string(p) + " does not exist (" +
                          std::to_string(programs_.size()) + " recorded since the last free_step())");
  for (auto& call : programs_[p - 1]) call();
}

void CpuBackend::run() { run(static_cast<Program>(programs_.size())); }

void CpuBackend::record(std::function<void()> call) {
  if (!recording_) throw InvalidArgument("cpu backend: ops must be recorded between begin() and end()");
  programs_.back().push_back(std::move(call));
}

void CpuBackend::fill(const BTensor& t, float value) {
  at(t);
  record([=, this] {
    Tensor& d = at(t);
    Tensor f = Tensor::zeros(d.shape(), DType::F32);
    std::fill(f.data<float>(), f.data<float>() + f.numel(), value);
    d.copy_from(f);
  });
}

void CpuBackend::matmul(const BTensor& a, const BTensor& b, const BTensor& c, const MatmulOptions& opt) {
  check_matmul_shapes("cpu::matmul", a.shape, b.shape, c.shape, opt);
  record([=, this] { ref::matmul(at(a), at(b), at(c), opt); });
}

void CpuBackend::nf4_matmul(const BTensor& x, const BNf4& w, const BTensor& y, const MatmulOptions& opt) {
  if (opt.trans_a || opt.trans_b) throw InvalidArgument("cpu::nf4_matmul: transposed operands are not supported");
  check_matmul_shapes("cpu::nf4_matmul", x.shape, w.shape, y.shape, opt);
  nf4_at(w);
  record([=, this] { ref::nf4_matmul(at(x), nf4_at(w).q, at(y), opt); });
}

void CpuBackend::nf4_matmul_backward(const BNf4& w, const BTensor& dy, const BTensor& dx, const MatmulOptions& opt) {
  if (opt.trans_a || opt.trans_b)
    throw InvalidArgument("cpu::nf4_matmul_backward: transposed operands are not supported");
  MatmulOptions shape_opt = opt;
  shape_opt.trans_b = true;  // dX [M, K] = alpha * dY [M, N] * W [N, K]
  check_matmul_shapes("cpu::nf4_matmul_backward", dy.shape, w.shape, dx.shape, shape_opt);
  nf4_at(w);
  record([=, this] { ref::nf4_matmul_backward(nf4_at(w).q, at(dy), at(dx), opt); });
}

void CpuBackend::embedding(const BTensor& ids, const BTensor& table, const BTensor& out) {
  check_embedding("cpu::embedding", ids.shape, table.shape, out.shape);
  record([=, this] { ref::embedding(at(ids), at(table), at(out)); });
}

void CpuBackend::embedding_backward(const BTensor& ids, const BTensor& dout, const BTensor& dtable) {
  check_embedding("cpu::embedding_backward", ids.shape, dtable.shape, dout.shape);
  record([=, this] { ref::embedding_backward(at(ids), at(dout), at(dtable)); });
}

void CpuBackend::rmsnorm(const BTensor& x, const BTensor& w, const BTensor& y, const BTensor& rstd, float eps) {
  check_rmsnorm_shapes("cpu::rmsnorm", x.shape, w.shape);
  record([=, this] { ref::rmsnorm(at(x), at(w), at(y), at(rstd), eps); });
}

void CpuBackend::rmsnorm_backward(const BTensor& x, const BTensor& w, const BTensor& rstd, const BTensor& dy,
                                  const BTensor& dx, const BTensor& dw, bool accumulate_dw) {
  check_rmsnorm_shapes("cpu::rmsnorm_backward", x.shape, w.shape);
  record([=, this] { ref::rmsnorm_backward(at(x), at(w), at(rstd), at(dy), at(dx), at(dw), accumulate_dw); });
}

void CpuBackend::rope(const BTensor& x, const BTensor& positions, const BTensor& table, RopeLayout layout,
                      bool inverse) {
  check_rope_shapes("cpu::rope", x.shape, positions.shape, table.shape);
  record([=, this] { ref::rope(at(x), at(positions), at(table), layout, inverse); });
}

void CpuBackend::attention(const BTensor& q, const BTensor& k, const BTensor& v, const BTensor* segments,
                           const BTensor& out, const BTensor& lse, const AttentionOptions& opt) {
  check_attention_shapes("cpu::attention", q.shape, k.shape, v.shape, segments ? &segments->shape : nullptr,
                         out.shape, lse.shape);
  const BTensor seg = segments ? *segments : BTensor{};
  record([=, this] { ref::attention(at(q), at(k), at(v), seg ? &at(seg) : nullptr, at(out), at(lse), opt); });
}

void CpuBackend::attention_backward(const BTensor& q, const BTensor& k, const BTensor& v, const BTensor* segments,
                                    const BTensor& out, const BTensor& lse, const BTensor& dout, const BTensor& dq,
                                    const BTensor& dk, const BTensor& dv, const AttentionOptions& opt) {
  check_attention_shapes("cpu::attention_backward", q.shape, k.shape, v.shape,
                         segments ? &segments->shape : nullptr, out.shape, lse.shape);
  const BTensor seg = segments ? *segments : BTensor{};
  record([=, this] {
    ref::attention_backward(at(q), at(k), at(v), seg ? &at(seg) : nullptr, at(out), at(lse), at(dout), at(dq),
                            at(dk), at(dv), opt);
  });
}

void CpuBackend::swiglu(const BTensor& g, const BTensor& u, const BTensor& h) {
  check_same_shapes("cpu::swiglu", {{"g", &g.shape}, {"u", &u.shape}, {"h", &h.shape}});
  record([=, this] { ref::swiglu(at(g), at(u), at(h)); });
}

void CpuBackend::swiglu_backward(const BTensor& g, const BTensor& u, const BTensor& dh, const BTensor& dg,
                                 const BTensor& du) {
  check_same_shapes("cpu::swiglu_backward",
                    {{"g", &g.shape}, {"u", &u.shape}, {"dh", &dh.shape}, {"dg", &dg.shape}, {"du", &du.shape}});
  record([=, this] { ref::swiglu_backward(at(g), at(u), at(dh), at(dg), at(du)); });
}

void CpuBackend::kv_cache_write(const BTensor& k, const BTensor& v, const BTensor& positions, const BTensor& k_cache,
                                const BTensor& v_cache) {
  check_kv_cache_write_shapes("cpu::kv_cache_write", k.shape, v.shape, positions.shape, k_cache.shape,
                              v_cache.shape);
  record([=, this] { ref::kv_cache_write(at(k), at(v), at(positions), at(k_cache), at(v_cache)); });
}

void CpuBackend::kv_cache_attention(const BTensor& q, const BTensor& k_cache, const BTensor& v_cache,
                                    const BTensor& positions, const BTensor& out, float scale) {
  check_kv_cache_attention_shapes("cpu::kv_cache_attention", q.shape, k_cache.shape, v_cache.shape, positions.shape,
                                  out.shape);
  record([=, this] { ref::kv_cache_attention(at(q), at(k_cache), at(v_cache), at(positions), at(out), scale); });
}

void CpuBackend::add(const BTensor& a, const BTensor& b, const BTensor& y, float alpha) {
  check_same_shapes("cpu::add", {{"a", &a.shape}, {"b", &b.shape}, {"y", &y.shape}});
  record([=, this] { ref::add(at(a), at(b), at(y), alpha); });
}

// The dropout key is read when the program runs (the host writes a new one per step).
LoraDropoutKey CpuBackend::lora_key(const BTensor& key) {
  return key ? lora_key_from_tensor("cpu::lora", at(key)) : LoraDropoutKey{};
}

void CpuBackend::lora_forward(const BTensor& x, const BTensor& a, const BTensor& b, const BTensor& y,
                              const BTensor& t, const BTensor& key, const LoraOptions& opt) {
  check_lora_shapes("cpu::lora_forward", x.shape, a.shape, b.shape, &y.shape);
  check_lora_key("cpu::lora_forward", key, opt);
  record([=, this] { ref::lora_forward(at(x), at(a), at(b), at(y), at(t), lora_key(key), opt); });
}

void CpuBackend::lora_backward(const BTensor& x, const BTensor& a, const BTensor& b, const BTensor& t,
                               const BTensor& dy, const BTensor& dx, const BTensor& da, const BTensor& db,
                               const BTensor& key, const LoraOptions& opt) {
  check_lora_shapes("cpu::lora_backward", x.shape, a.shape, b.shape, &dy.shape);
  check_lora_key("cpu::lora_backward", key, opt);
  record([=, this] {
    ref::lora_backward(at(x), at(a), at(b), at(t), at(dy), at(dx), at(da), at(db), lora_key(key), opt);
  });
}

namespace {
void check_f32_words(const char* op, const char* what, const BTensor& t, std::int64_t n) {
  if (t.dtype != DType::F32 || t.shape != Shape{n})
    throw ShapeError(std::string(op) + ": " + what + " is " + shape_str(t.shape) + " " + dtype_name(t.dtype) +
                     ", expected f32 [" + std::to_string(n) + "]");
}
}  // namespace

void CpuBackend::cross_entropy(const BTensor& logits, const BTensor& labels, const BTensor& lse,
                               const BTensor& totals) {
  check_cross_entropy("cpu::cross_entropy", logits.shape, labels.shape);
  check_f32_words("cpu::cross_entropy", "totals", totals, 2);
  record([=, this] {
    const CrossEntropyResult r = ref::cross_entropy(at(logits), at(labels), at(lse));
    // Accumulated in f32 as the GPU does (one add per call here, per token there).
    float* acc = at(totals).data<float>();
    acc[0] += static_cast<float>(r.sum);
    acc[1] += static_cast<float>(r.valid);
  });
}

void CpuBackend::cross_entropy_backward(const BTensor& logits, const BTensor& labels, const BTensor& lse,
                                        const BTensor& scale, const BTensor& dlogits) {
  check_cross_entropy("cpu::cross_entropy_backward", logits.shape, labels.shape);
  check_f32_words("cpu::cross_entropy_backward", "scale", scale, 1);
  check_same_shapes("cpu::cross_entropy_backward", {{"logits", &logits.shape}, {"dlogits", &dlogits.shape}});
  record([=, this] {
    ref::cross_entropy_backward(at(logits), at(labels), at(lse), at(dlogits), at(scale).data<float>()[0]);
  });
}

void CpuBackend::grad_norm(const std::vector<BTensor>& grads, float max_norm, const BTensor& stats) {
  if (grads.empty()) throw InvalidArgument("cpu::grad_norm: no gradient tensors");
  for (const auto& g : grads) at(g);
  at(stats);
  record([=, this] {
    std::vector<const Tensor*> g;
    for (const auto& h : grads) g.push_back(&at(h));
    at(stats).copy_from(grad_stats_tensor(ref::grad_norm(g, max_norm)));
  });
}

void CpuBackend::optimizer_step(const OptimizerConfig& cfg, const BTensor& step_consts, const BTensor& param,
                                const BTensor& grad, const BOptimizerState& state, const BTensor& stats) {
  const std::string op = std::string("cpu::optimizer_step (") + optimizer_name(cfg.kind) + ")";
  check_same_shapes(op.c_str(), {{"param", &param.shape}, {"grad", &grad.shape}});
  check_f32_words(op.c_str(), "step constants", step_consts, kStepConstantWords);
  check_optimizer_state(op, cfg, param.shape, state);
  record([=, this] {
    OptimizerState st;
    for (const auto& [dst, src] : {std::pair<Tensor*, const BTensor*>{&st.m, &state.m}, {&st.v, &state.v},
                                   {&st.row, &state.row}, {&st.col, &state.col}})
      if (*src) *dst = at(*src);  // shares the backend's storage: the update writes it in place
    ref::optimizer_step(cfg, step_constants_from_tensor(at(step_consts)), at(param), at(grad), st,
                        grad_stats_from_tensor(at(stats)));
  });
}

}  // namespace pocketlora::ref
