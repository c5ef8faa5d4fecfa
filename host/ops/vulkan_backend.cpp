#include "host/ops/vulkan_backend.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>

#include "host/core/error.h"
#include "host/ops/attention.h"
#include "host/ops/kv_cache.h"
#include "host/ops/cross_entropy.h"
#include "host/ops/embedding.h"
#include "host/ops/lora.h"
#include "host/ops/matmul.h"
#include "host/ops/optimizer.h"
#include "host/ops/rmsnorm.h"
#include "host/ops/rope.h"
#include "host/ops/swiglu.h"

namespace pocketlora::ops {

VulkanBackend::VulkanBackend(vk::Device& dev)
    : dev_(dev),
      weights_(std::make_unique<vk::Arena>(dev, vk::Lifetime::Permanent, "backend weights")),
      step_(std::make_unique<vk::Arena>(dev, vk::Lifetime::Step, "backend step")),
      program_(std::make_unique<vk::Arena>(dev, vk::Lifetime::Scratch, "backend program scratch")) {}

VulkanBackend::VulkanBackend(std::unique_ptr<vk::Device> dev) : VulkanBackend(*dev) { owned_ = std::move(dev); }

// The recording refers to arena memory: drop it first, then the arenas, then (if owned) the device.
VulkanBackend::~VulkanBackend() {
  dev_.wait_idle();  // a submit that failed (e.g. timed out) may still be using these buffers
  programs_.clear();
  program_.reset();
  planned_.reset();
  step_.reset();
  weights_.reset();
}

std::string VulkanBackend::describe() const {
  return "vulkan: " + dev_.caps().name + " (profile " + dev_.profile().name() + ")";
}

bool VulkanBackend::prefers_f16_activations() const { return dev_.caps().storage_16bit; }

std::uint64_t VulkanBackend::memory_in_use() const {
  return weights_->capacity() + step_->capacity() + program_->capacity() + (planned_ ? planned_->capacity() : 0);
}

std::optional<Backend::MemoryBudget> VulkanBackend::memory_budget() const {
  const vk::Capabilities& caps = dev_.caps();
  // Asked now, not when the device was made: each plan (a run's start, its resume after a policy pause) sees the
  // budget the OS gives at that moment.
  const std::vector<vk::MemoryHeapInfo> heaps = vk::query_memory_heaps(dev_.physical(), caps.has_memory_budget);
  const vk::MemoryHeapInfo* heap = nullptr;  // where the arenas' device-local memory comes from: the largest
  for (const auto& h : heaps)
    if (h.device_local && (!heap || h.size > heap->size)) heap = &h;
  if (!heap) return std::nullopt;
  constexpr std::uint64_t kMiB = 1u << 20;
  const auto param = [&](const char* key) { return static_cast<std::uint64_t>(std::max<std::int64_t>(0, dev_.profile().param(key))); };
  const std::uint64_t margin = param("memory.budget_margin_mib") * kMiB;
  MemoryBudget b;
  std::uint64_t avail = 0;
  if (const std::uint64_t forced = param("memory.heap_budget_mib"); forced > 0) {
    avail = forced * kMiB;
    b.source = "profile memory.heap_budget_mib " + std::to_string(forced);
  } else if (caps.has_memory_budget) {
    // The usage counts what this device already holds (its weights, when a plan is made again with them
    // resident); the plan counts that itself, so only the rest of the process's usage is taken off the budget.
    const std::uint64_t own = std::min<std::uint64_t>(heap->usage, dev_.allocated_bytes());
    avail = heap->budget > heap->usage - own ? heap->budget - (heap->usage - own) : 0;
    b.source = "VK_EXT_memory_budget: heap budget " + std::to_string(heap->budget) + " - usage " +
               std::to_string(heap->usage) + " (of which this device's own " + std::to_string(own) + " excluded)";
  } else {
    const std::uint64_t pct = param("memory.heap_percent_without_budget_ext");
    avail = heap->size / 100 * pct;
    b.source = std::to_string(pct) + "% of the " + std::to_string(heap->size) + "-byte heap (no VK_EXT_memory_budget)";
  }
  b.bytes = avail > margin ? avail - margin : 0;
  b.source += " - margin " + std::to_string(margin / kMiB) + " MiB";
  return b;
}

std::vector<Backend::MemoryUse> VulkanBackend::memory_breakdown() const {
  std::vector<MemoryUse> out{{"weights", weights_->capacity(), weights_->used()},
                             {"step (unplanned)", step_->capacity(), step_->peak()},
                             {"op scratch", program_->capacity(), program_->peak()}};
  if (planned_) out.push_back({"step (planned)", planned_->capacity(), planned_->capacity()});
  return out;
}

StepArenaLimits VulkanBackend::step_arena_limits() const {
  const vk::Capabilities& c = dev_.caps();
  // Not capped at the arena block size: the planned arena is allocated once per step, and every block boundary
  // is padding the planner must leave (no tensor crosses one) — at the 1B shapes, tens of MiB in 64 MiB blocks.
  std::uint64_t block = c.max_storage_buffer_range;
  if (c.max_memory_allocation_size != 0) block = std::min<std::uint64_t>(block, c.max_memory_allocation_size);
  const std::uint64_t align = dev_.alignment();
  return {align, block / align * align, align};
}

std::uint64_t VulkanBackend::attention_scratch_bytes(const Shape& q, const Shape& k, const AttentionOptions& opt,
                                                     bool backward) const {
  if (q.size() != 3 || k.size() != 3) return 0;  // the op itself reports the bad shape
  return ops::attention_scratch_bytes(dev_, {q[0], q[1], k[1], q[2]}, opt, backward);
}

std::uint64_t VulkanBackend::lora_scratch_bytes(const Shape& x, DType x_dtype, std::int64_t rank,
                                                const LoraOptions& opt, bool backward) const {
  if (x.size() != 2) return 0;
  return ops::lora_scratch_bytes(dev_, x[0], x[1], rank, x_dtype, opt, backward);
}

std::uint64_t VulkanBackend::cross_entropy_scratch_bytes(std::int64_t rows) const {
  return ops::cross_entropy_stats_bytes(dev_, rows);
}

std::uint64_t VulkanBackend::optimizer_scratch_bytes(const OptimizerConfig& cfg) const {
  return cfg.kind == OptimizerKind::Adafactor ? ops::arena_bytes(dev_, 2 * sizeof(float)) : 0;
}

void VulkanBackend::reserve_step(const StepLayout& layout) {
  placer_.reserve(layout, step_arena_limits(), "vulkan backend");
  try {
    planned_ = std::make_unique<vk::PlannedArena>(dev_, layout.block_sizes(), "backend step (planned)");
    // The op scratch in one block of the planned size: grown from 1 MiB blocks instead, a 16 MiB op would leave
    // the 15 MiB of smaller blocks before it held (reserve_step follows free_step: no recording uses the old one).
    // The weights, NF4 base, adapter and optimizer state uploaded next: blocks sized to them, not doubling.
    weights_->expect(layout.resident_bytes);
    // With the step planned, the bump arena takes only what the plan leaves out (grad_norm's chunk table, which
    // the host writes while recording: ~1 KiB): small blocks, not a 1 MiB one.
    if (step_->used() == 0)
      step_ = std::make_unique<vk::Arena>(dev_, vk::Lifetime::Step, "backend step", vk::MemoryKind::Device,
                                          VkDeviceSize{64} << 10);
    if (layout.op_scratch_bytes > 0 && program_->capacity() != layout.op_scratch_bytes)
      program_ = std::make_unique<vk::Arena>(dev_, vk::Lifetime::Scratch, "backend program scratch",
                                             vk::MemoryKind::Device, layout.op_scratch_bytes);
  } catch (...) {
    placer_.clear();
    throw;
  }
}

VulkanBackend::Slot& VulkanBackend::slot(const BTensor& h) {
  if (h.id == 0 || h.id > slots_.size())
    throw InvalidArgument("vulkan backend: tensor handle " + std::to_string(h.id) + " does not exist");
  Slot& s = slots_[h.id - 1];
  if (!s.live) throw InvalidArgument("vulkan backend: tensor '" + s.name + "' was freed by free_step()");
  if (s.rows.shape != h.shape || s.rows.dtype != h.dtype)
    throw InvalidArgument("vulkan backend: handle of '" + s.name + "' says " + shape_str(h.shape) + " " +
                          dtype_name(h.dtype) + ", the tensor is " + shape_str(s.rows.shape) + " " +
                          dtype_name(s.rows.dtype));
  return s;
}

const DeviceTensor& VulkanBackend::at(const BTensor& h) {
  Slot& s = slot(h);
  if (s.rows.chunks.size() != 1)
    throw DeviceLimitError("vulkan backend: '" + s.name + "' " + shape_str(s.rows.shape) + " is split across " +
                           std::to_string(s.rows.chunks.size()) + " bindings (maxStorageBufferRange " +
                           std::to_string(dev_.caps().max_storage_buffer_range) +
                           " bytes); this op needs it in one binding");
  return s.rows.chunks[0];
}

const Nf4Weight& VulkanBackend::nf4_at(const BNf4& h) const {
  if (h.id == 0 || h.id > nf4_.size())
    throw InvalidArgument("vulkan backend: NF4 handle " + std::to_string(h.id) + " ('" + h.name + "') does not exist");
  return nf4_[h.id - 1];
}

vk::Sequence& VulkanBackend::seq() {
  if (!recording_) throw InvalidArgument("vulkan backend: ops must be recorded between begin() and end()");
  return *programs_.back();
}

BTensor VulkanBackend::alloc(const Shape& shape, DType dtype, Lifetime life, const std::string& name) {
  vk::Arena& arena = life == Lifetime::Weights ? *weights_ : *step_;
  Slot s;
  s.life = life;
  s.name = name;
  const std::uint64_t bytes = static_cast<std::uint64_t>(shape_numel(shape)) * dtype_size(dtype);
  const std::optional<StepLayoutTensor> placed =
      life == Lifetime::Step ? placer_.place(name, shape, dtype) : std::nullopt;
  if (placed) {
    s.rows.shape = shape;
    s.rows.dtype = dtype;
    s.rows.rows_per_chunk = shape.empty() ? 1 : shape[0];
    // Empty tensors still bind a valid range, as the bump arena gives them.
    s.rows.chunks.push_back(
        {planned_->slice(placed->offset, std::max<std::uint64_t>(bytes, 4), name), shape, dtype});
    s.no_host_writes = !placed->host_written;
  } else if (shape.size() == 2 &&
             bytes > std::min<std::uint64_t>(dev_.caps().max_storage_buffer_range, dev_.block_size())) {
    s.rows = allocate_row_chunked(arena, shape, dtype, name);
  } else {
    s.rows.shape = shape;
    s.rows.dtype = dtype;
    s.rows.rows_per_chunk = shape.empty() ? 1 : shape[0];
    s.rows.chunks.push_back(allocate(arena, shape, dtype, name));
  }
  slots_.push_back(std::move(s));
  return {static_cast<std::uint32_t>(slots_.size()), shape, dtype};
}

BNf4 VulkanBackend::upload_nf4(const Nf4Quantized& w, const std::string& name) {
  nf4_.push_back(ops::upload_nf4(dev_, *weights_, w, name));
  return {static_cast<std::uint32_t>(nf4_.size()), w.shape, name};
}

void VulkanBackend::write(const BTensor& dst, const Tensor& src) {
  Slot& s = slot(dst);
  if (s.no_host_writes) refuse_unplanned_host_write("vulkan backend", s.name);
  if (src.shape() != s.rows.shape)
    throw ShapeError("vulkan backend: write of " + shape_str(src.shape()) + " into '" + s.name + "' " +
                     shape_str(s.rows.shape));
  if (s.rows.chunks.size() == 1) {  // one binding (and every rank-0 tensor)
    const Tensor part = src.dtype() == s.rows.dtype && src.is_contiguous() ? src : src.to(s.rows.dtype);
    if (part.nbytes()) dev_.upload(s.rows.chunks[0].buf, part.raw(), part.nbytes());
    return;
  }
  write_rows(dst, 0, src);
}

void VulkanBackend::write_rows(const BTensor& dst, std::int64_t row0, const Tensor& src) {
  Slot& s = slot(dst);
  if (s.no_host_writes) refuse_unplanned_host_write("vulkan backend", s.name);
  check_write_rows("vulkan backend", s.name, s.rows.shape, row0, src);
  // Converted one binding chunk (<= maxStorageBufferRange) at a time: an f32 table written as f16 never exists
  // converted on the host in full.
  const Tensor c = src.is_contiguous() ? src : src.to(src.dtype());
  const auto row_bytes = static_cast<VkDeviceSize>(shape_nbytes(Shape(s.rows.shape.begin() + 1, s.rows.shape.end()), s.rows.dtype));
  const std::int64_t end = row0 + c.dim(0);
  for (std::size_t i = 0; i < s.rows.chunks.size(); ++i) {
    const std::int64_t c0 = static_cast<std::int64_t>(i) * s.rows.rows_per_chunk, c1 = c0 + s.rows.chunks[i].dim(0);
    const std::int64_t lo = std::max(c0, row0), hi = std::min(c1, end);
    if (lo >= hi) continue;
    const Tensor rows = c.slice_rows(lo - row0, hi - row0);
    const Tensor part = rows.dtype() == s.rows.dtype ? rows : rows.to(s.rows.dtype);
    if (part.nbytes())
      dev_.upload(s.rows.chunks[i].buf.sub(static_cast<VkDeviceSize>(lo - c0) * row_bytes, part.nbytes()), part.raw(),
                  part.nbytes());
  }
}

Tensor VulkanBackend::read(const BTensor& src) {
  Slot& s = slot(src);
  return s.rows.chunks.size() == 1 ? download(dev_, s.rows.chunks[0]) : download(dev_, s.rows);
}

void VulkanBackend::free_step() {
  dev_.wait_idle();  // a submit that failed (e.g. timed out) may still be using the step's buffers
  programs_.clear();
  recording_ = false;
  program_->reset();
  step_->reset();
  placer_.clear();
  planned_.reset();
  for (auto& s : slots_)
    if (s.life == Lifetime::Step) s.live = false;
}

BTensor VulkanBackend::reshape(const BTensor& t, const Shape& shape) {
  const DeviceTensor base = at(t);
  if (shape_numel(shape) != base.numel())
    throw ShapeError("vulkan backend: reshape of '" + slot(t).name + "' " + shape_str(base.shape) + " to " +
                     shape_str(shape) + " changes the element count");
  Slot view = slot(t);
  view.rows.shape = shape;
  view.rows.rows_per_chunk = shape.empty() ? 1 : shape[0];
  view.rows.chunks[0].shape = shape;
  slots_.push_back(std::move(view));
  return {static_cast<std::uint32_t>(slots_.size()), shape, t.dtype};
}

BTensor VulkanBackend::view_rows(const BTensor& t, std::int64_t row0, std::int64_t rows) {
  const DeviceTensor base = at(t);
  const std::string& name = slot(t).name;
  const Shape shape = view_rows_shape(name, base.shape, row0, rows);
  const VkDeviceSize row_bytes = shape_nbytes(Shape(base.shape.begin() + 1, base.shape.end()), base.dtype);
  const VkDeviceSize offset = static_cast<VkDeviceSize>(row0) * row_bytes;
  // Descriptors bind the view at base offset + offset; the device only accepts multiples of this alignment.
  const std::uint64_t align = dev_.caps().min_storage_buffer_offset_alignment;
  if ((base.buf.offset + offset) % align != 0)
    throw DeviceLimitError("vulkan backend: view_rows of '" + name + "' " + shape_str(base.shape) + " at row " +
                           std::to_string(row0) + " starts at byte offset " + std::to_string(base.buf.offset + offset) +
                           ", not a multiple of the device's minStorageBufferOffsetAlignment " +
                           std::to_string(align) + " (" + std::to_string(row_bytes) + " bytes per row)");
  Slot view = slot(t);
  view.rows.shape = shape;
  view.rows.rows_per_chunk = rows;
  view.rows.chunks[0].shape = shape;
  view.rows.chunks[0].buf = base.buf.sub(offset, static_cast<VkDeviceSize>(rows) * row_bytes);
  slots_.push_back(std::move(view));
  return {static_cast<std::uint32_t>(slots_.size()), shape, t.dtype};
}

// Op scratch (attention scores, LoRA's drop(X) and G, cross-entropy statistics) is written and read by the GPU
// within the one op that allocates it, so every op rewinds the scratch arena and all ops share its
// bytes: the arena holds the largest op's scratch, not the sum over a recorded step (hundreds of MiB at the 1B
// shapes). The sequence orders a reuse by the byte ranges its dispatches declare (a write-after-read barrier), and
// programs run one after another (submit and wait), so a replay never sees another op's scratch.
vk::Arena& VulkanBackend::op_scratch() {
  program_->reset();
  return *program_;
}

void VulkanBackend::begin() {
  if (recording_) throw InvalidArgument("vulkan backend: begin() while recording (call end() first)");
  programs_.push_back(std::make_unique<vk::Sequence>(dev_));
  recording_ = true;
}

Backend::Program VulkanBackend::end() {
  seq().finish();
  recording_ = false;
  return static_cast<Program>(programs_.size());
}

void VulkanBackend::run(Program p) {
  if (recording_) throw InvalidArgument("vulkan backend: run() while recording (call end() first)");
  if (p == 0 || p > programs_.size())
    throw InvalidArgument("vulkan backend: program " + std::to_string(p) + " does not exist (" +
                          std::to_string(programs_.size()) + " recorded since the last free_step())");
  programs_[p - 1]->submit();
}

void VulkanBackend::run() { run(static_cast<Program>(programs_.size())); }

void VulkanBackend::fill(const BTensor& t, float value) {
  const DeviceTensor& d = at(t);
  std::uint32_t word = 0;
  if (d.dtype == DType::F32) {
    word = std::bit_cast<std::uint32_t>(value);
  } else if (d.dtype == DType::I32 && value == static_cast<float>(static_cast<std::int32_t>(value))) {
    word = static_cast<std::uint32_t>(static_cast<std::int32_t>(value));
  } else {
    throw ShapeError("vulkan backend: fill of '" + slot(t).name + "' (" + dtype_name(d.dtype) +
                     "): only f32 and integral i32 fills are supported");
  }
  seq().fill(d.buf.sub(0, d.nbytes()), word);
}

void VulkanBackend::matmul(const BTensor& a, const BTensor& b, const BTensor& c, const MatmulOptions& opt) {
  const RowChunkedTensor& rows = slot(b).rows;
  if (rows.chunks.size() > 1) ops::matmul(seq(), at(a), rows, at(c), opt);  // the head of a large vocabulary
  else ops::matmul(seq(), at(a), at(b), at(c), opt);
}

void VulkanBackend::nf4_matmul(const BTensor& x, const BNf4& w, const BTensor& y, const MatmulOptions& opt) {
  ops::nf4_matmul(seq(), at(x), nf4_at(w), at(y), opt);
}

void VulkanBackend::nf4_matmul_backward(const BNf4& w, const BTensor& dy, const BTensor& dx, const MatmulOptions& opt) {
  ops::nf4_matmul_backward(seq(), nf4_at(w), at(dy), at(dx), opt);
}

void VulkanBackend::embedding(const BTensor& ids, const BTensor& table, const BTensor& out) {
  ops::embedding(seq(), at(ids), slot(table).rows, at(out));
}

void VulkanBackend::embedding_backward(const BTensor& ids, const BTensor& dout, const BTensor& dtable) {
  ops::embedding_backward(seq(), at(ids), at(dout), slot(dtable).rows);
}

void VulkanBackend::rmsnorm(const BTensor& x, const BTensor& w, const BTensor& y, const BTensor& rstd, float eps) {
  ops::rmsnorm(seq(), at(x), at(w), at(y), at(rstd), eps);
}

void VulkanBackend::rmsnorm_backward(const BTensor& x, const BTensor& w, const BTensor& rstd, const BTensor& dy,
                                     const BTensor& dx, const BTensor& dw, bool accumulate_dw) {
  ops::rmsnorm_backward(seq(), at(x), at(w), at(rstd), at(dy), at(dx), at(dw), accumulate_dw);
}

void VulkanBackend::rope(const BTensor& x, const BTensor& positions, const BTensor& table, RopeLayout layout,
                         bool inverse) {
  ops::rope(seq(), at(x), at(positions), at(table), layout, inverse);
}

void VulkanBackend::attention(const BTensor& q, const BTensor& k, const BTensor& v, const BTensor* segments,
                              const BTensor& out, const BTensor& lse, const AttentionOptions& opt) {
  ops::attention(seq(), op_scratch(), at(q), at(k), at(v), segments ? &at(*segments) : nullptr, at(out), at(lse), opt);
}

void VulkanBackend::attention_backward(const BTensor& q, const BTensor& k, const BTensor& v, const BTensor* segments,
                                       const BTensor& out, const BTensor& lse, const BTensor& dout, const BTensor& dq,
                                       const BTensor& dk, const BTensor& dv, const AttentionOptions& opt) {
  ops::attention_backward(seq(), op_scratch(), at(q), at(k), at(v), segments ? &at(*segments) : nullptr, at(out),
                          at(lse), at(dout), at(dq), at(dk), at(dv), opt);
}

void VulkanBackend::swiglu(const BTensor& g, const BTensor& u, const BTensor& h) {
  ops::swiglu(seq(), at(g), at(u), at(h));
}

void VulkanBackend::swiglu_backward(const BTensor& g, const BTensor& u, const BTensor& dh, const BTensor& dg,
                                    const BTensor& du) {
  ops::swiglu_backward(seq(), at(g), at(u), at(dh), at(dg), at(du));
}

void VulkanBackend::kv_cache_write(const BTensor& k, const BTensor& v, const BTensor& positions,
                                   const BTensor& k_cache, const BTensor& v_cache) {
  ops::kv_cache_write(seq(), at(k), at(v), at(positions), at(k_cache), at(v_cache));
}

void VulkanBackend::kv_cache_attention(const BTensor& q, const BTensor& k_cache, const BTensor& v_cache,
                                       const BTensor& positions, const BTensor& out, float scale) {
  ops::kv_cache_attention(seq(), at(q), at(k_cache), at(v_cache), at(positions), at(out), scale);
}

void VulkanBackend::add(const BTensor& a, const BTensor& b, const BTensor& y, float alpha) {
  ops::add(seq(), at(a), at(b), at(y), alpha);
}

// One dispatch where the few-row GEMV applies (decoding), else the linear and the adapter as two ops.
void VulkanBackend::matmul_lora(const BTensor& x, const BTensor& w, const BTensor& a, const BTensor& b,
                                const BTensor& y, const BTensor& t, float scale, const MatmulOptions& opt) {
  if (slot(w).rows.chunks.size() <= 1 && ops::matmul_lora(seq(), at(x), at(w), at(y), at(a), at(b), scale, opt)) return;
  Backend::matmul_lora(x, w, a, b, y, t, scale, opt);
}

void VulkanBackend::lora_forward(const BTensor& x, const BTensor& a, const BTensor& b, const BTensor& y,
                                 const BTensor& t, const BTensor& key, const LoraOptions& opt) {
  check_lora_key("vulkan::lora_forward", key, opt);
  ops::lora_forward(seq(), op_scratch(), at(x), at(a), at(b), at(y), at(t), key ? at(key) : ops::DeviceTensor{}, opt);
}

void VulkanBackend::lora_backward(const BTensor& x, const BTensor& a, const BTensor& b, const BTensor& t,
                                  const BTensor& dy, const BTensor& dx, const BTensor& da, const BTensor& db,
                                  const BTensor& key, const LoraOptions& opt) {
  check_lora_key("vulkan::lora_backward", key, opt);
  ops::lora_backward(seq(), op_scratch(), at(x), at(a), at(b), at(t), at(dy), at(dx), at(da), at(db),
                     key ? at(key) : ops::DeviceTensor{}, opt);
}

// The per-row running statistics are program scratch: written and consumed within the one call.
void VulkanBackend::cross_entropy(const BTensor& logits, const BTensor& labels, const BTensor& lse,
                                  const BTensor& totals) {
  const DeviceTensor& l = at(logits);
  check_cross_entropy("vulkan::cross_entropy", l.shape, at(labels).shape);
  const DeviceTensor stats = make_cross_entropy_stats(op_scratch(), l.dim(0));
  ops::cross_entropy_chunk(seq(), l, at(labels), 0, true, stats);
  ops::cross_entropy_finalize(seq(), at(labels), stats, at(lse), at(totals));
}

void VulkanBackend::cross_entropy_backward(const BTensor& logits, const BTensor& labels, const BTensor& lse,
                                           const BTensor& scale, const BTensor& dlogits) {
  ops::cross_entropy_backward_chunk(seq(), at(logits), at(labels), 0, at(lse), at(scale), at(dlogits));
}

void VulkanBackend::grad_norm(const std::vector<BTensor>& grads, float max_norm, const BTensor& stats) {
  std::vector<DeviceTensor> g;
  for (const auto& h : grads) g.push_back(at(h));
  // Not op scratch: the host writes grad_norm's chunk table into it while recording, so other ops must not reuse
  // those bytes (the step arena keeps them until free_step()).
  ops::grad_norm(seq(), *step_, g, max_norm, at(stats));
}

// Adafactor's (mean(R), rms(u)) pair is recomputed every step before it is read: program scratch, not state.
void VulkanBackend::optimizer_step(const OptimizerConfig& cfg, const BTensor& step_consts, const BTensor& param,
                                   const BTensor& grad, const BOptimizerState& state, const BTensor& stats) {
  const std::string op = std::string("vulkan::optimizer_step (") + optimizer_name(cfg.kind) + ")";
  check_optimizer_state(op, cfg, param.shape, state);
  DeviceOptimizerState st;
  for (const auto& [dst, src] : {std::pair<DeviceTensor*, const BTensor*>{&st.m, &state.m},
                                 {&st.v, &state.v},
                                 {&st.row, &state.row},
                                 {&st.col, &state.col}})
    if (*src) *dst = at(*src);
  if (cfg.kind == OptimizerKind::Adafactor) st.scratch = allocate(op_scratch(), {2}, DType::F32, op + " scratch");
  ops::optimizer_step(seq(), cfg, at(step_consts), at(param), at(grad), st, at(stats));
}

}  // namespace pocketlora::ops
