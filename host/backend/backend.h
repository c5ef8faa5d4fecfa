#pragma once
// The one op interface. The Llama block, its backward and the trainer are written once against `Backend` and run
// on the CPU backend (host/ref/, Eigen + OpenBLAS) or the Vulkan backend (host/ops/ over runtime/).
//
// Why a small virtual interface over handles (not a template parameter): the trainer plans a step once and replays
// it, so the interface is "record a program, then run it many times" — on Vulkan the recording is a command
// buffer, on the CPU a list of calls. Handles (`BTensor`) are plain values (id + shape + dtype) that the
// planner can reason about without knowing where the bytes live, and a virtual call per op is noise next to a
// kernel launch. Ops take arguments in the order of the host/ref and host/ops functions of the same name
// (inputs, outputs, options); backward ops sit next to their forward.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/step_layout.h"
#include "host/core/nf4_quantize.h"
#include "host/core/op/attention.h"
#include "host/core/op/cross_entropy.h"
#include "host/core/op/kv_cache.h"
#include "host/core/op/lora.h"
#include "host/core/op/matmul.h"
#include "host/core/op/optimizer.h"
#include "host/core/op/rope.h"
#include "host/core/tensor.h"

namespace pocketlora {

enum class BackendKind { Cpu, Vulkan };
const char* backend_kind_name(BackendKind k);         // "cpu", "vulkan"
BackendKind parse_backend_kind(const std::string& s);  // InvalidArgument naming the accepted values
// "auto": Vulkan when this build has it and a GPU is present (discrete, integrated or virtual), else the CPU
// backend — a CPU Vulkan driver (lavapipe) is slower than the CPU backend itself. Other names: parse_backend_kind.
BackendKind resolve_backend_kind(const std::string& s);

// How long a backend tensor lives: weights for the backend's life, step tensors until free_step().
enum class Lifetime { Weights, Step };

// A tensor owned by a backend. Cheap to copy; `id` 0 is "no tensor".
struct BTensor {
  std::uint32_t id = 0;
  Shape shape;
  DType dtype = DType::F32;
  std::int64_t numel() const { return shape_numel(shape); }
  std::int64_t dim(int i) const { return shape.at(static_cast<std::size_t>(i < 0 ? i + rank() : i)); }
  int rank() const { return static_cast<int>(shape.size()); }
  explicit operator bool() const { return id != 0; }
};

// An NF4 weight [N, K] resident on a backend (codes, absmax, double-quant statistics).
struct BNf4 {
  std::uint32_t id = 0;
  Shape shape;
  std::string name;
};

// The shape of view_rows(t, row0, rows) for a tensor `name` of shape `shape`: ShapeError naming the tensor, the
// range and the shape when the range leaves the leading dimension (or the tensor has none).
Shape view_rows_shape(const std::string& name, const Shape& shape, std::int64_t row0, std::int64_t rows);
// Checks a write_rows of `src` into rows of `name` (shape `shape`) from row0: ShapeError naming the backend and
// the tensor unless src is that many of its rows.
void check_write_rows(const char* backend, const std::string& name, const Shape& shape, std::int64_t row0,
                      const Tensor& src);

// The optimizer state of one trained tensor (f32, Weights lifetime), as OptimizerState: m, v (AdamW), m (Lion, SGD
// momentum), row, col (Adafactor); the others are id 0. Ordinary tensors: read()/write() save and restore them.
struct BOptimizerState {
  BTensor m, v, row, col;
  // The defined ones with their names ("m", "v", "row", "col"), in that order: what a checkpoint saves.
  std::vector<std::pair<std::string, BTensor>> tensors() const;
};
// ShapeError naming `op` and the member unless `s` has exactly the members and shapes alloc_optimizer_state makes.
void check_optimizer_state(const std::string& op, const OptimizerConfig& cfg, const Shape& param_shape,
                           const BOptimizerState& s);

// InvalidArgument naming `op` when dropout is on without a key; ShapeError when the key is not i32 [kLoraKeyWords].
void check_lora_key(const std::string& op, const BTensor& key, const LoraOptions& opt);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendKind kind() const = 0;
  virtual std::string describe() const = 0;  // device / library in one line, for logs and reports
  // Whether f16 activations (mixed precision) are this backend's default: a Vulkan device with 16-bit storage
  // (half the activation bytes and memory traffic). The CPU backend widens f16 to f32 in every kernel, so f16 would
  // only save memory there: false.
  virtual bool prefers_f16_activations() const { return false; }
  // Bytes of memory the backend holds now (device memory on Vulkan: every arena block; host memory on the CPU).
  virtual std::uint64_t memory_in_use() const = 0;
  // memory_in_use by where it goes (Vulkan: each arena's blocks held and the bytes handed out of them), for
  // reports that set the measurement beside the plan. Default: one entry, the total.
  struct MemoryUse {
    std::string name;
    std::uint64_t held = 0, used = 0;
  };
  virtual std::vector<MemoryUse> memory_breakdown() const { return {{"total", memory_in_use(), memory_in_use()}}; }
  // The memory a plan on this backend may take, and where the figure comes from (named in refusals), when the
  // backend has one. Vulkan: the largest device-local heap's VK_EXT_memory_budget budget minus its usage when the
  // device was made (on phones and integrated GPUs the heap is the OS's RAM, shared) minus a margin, or without the
  // extension a fraction of the heap's size (profile memory.*; docs/MEMORY.md). nullopt: none (the CPU backend,
  // whose step memory is ordinary host memory; --max-memory still applies). The trainer plans for
  // min(--max-memory, this).
  struct MemoryBudget {
    std::uint64_t bytes = 0;
    std::string source;
  };
  virtual std::optional<MemoryBudget> memory_budget() const { return std::nullopt; }
  // How this backend can place step tensors in one arena (alignment, largest block), for planning its layout.
  virtual StepArenaLimits step_arena_limits() const = 0;
  // Immediate: the Step allocations from now on go, in order, to the offsets of `layout` (planned for
  // step_arena_limits(); see host/backend/step_layout.h) in one arena of layout.arena_bytes, so tensors whose
  // lifetimes do not overlap share bytes. An allocation that differs from the planned one (name, shape, dtype) is
  // an InvalidArgument; allocations past the layout's end get their own memory. Until free_step(), which releases
  // the arena; reserving twice before it is an error.
  virtual void reserve_step(const StepLayout& layout) = 0;
  // Device scratch one op takes beyond its operands (Vulkan: attention's score buffers, LoRA's G and drop(X),
  // cross-entropy statistics, Adafactor's sums), from the operands' shapes and dtypes. Ops share it (each rewinds
  // it), so a step holds the largest op's: the memory plan takes the maximum over the step's ops
  // (PlanningBackend) and reserve_step holds exactly that (StepLayout::op_scratch_bytes). 0: this backend's op
  // scratch is not device memory (the CPU backend's).
  virtual std::uint64_t attention_scratch_bytes(const Shape& /*q*/, const Shape& /*k*/, const AttentionOptions&,
                                                bool /*backward*/) const {
    return 0;
  }
  virtual std::uint64_t lora_scratch_bytes(const Shape& /*x*/, DType /*x_dtype*/, std::int64_t /*rank*/,
                                           const LoraOptions&, bool /*backward*/) const {
    return 0;
  }
  virtual std::uint64_t cross_entropy_scratch_bytes(std::int64_t /*rows*/) const { return 0; }
  virtual std::uint64_t optimizer_scratch_bytes(const OptimizerConfig&) const { return 0; }

  // --- memory (immediate) ---
  virtual BTensor alloc(const Shape& shape, DType dtype, Lifetime life, const std::string& name) = 0;
  BTensor upload(const Tensor& t, Lifetime life, const std::string& name);
  virtual BNf4 upload_nf4(const Nf4Quantized& w, const std::string& name) = 0;
  // upload_nf4 of a weight the caller no longer needs: the CPU backend keeps `w` itself instead of a copy (so the
  // NF4 base exists once on the host); a device backend copies it out and the caller's temporary goes.
  virtual BNf4 adopt_nf4(Nf4Quantized&& w, const std::string& name) { return upload_nf4(w, name); }
  // False for a backend that only sizes what it is given (the memory planner): weights may be uploaded as shapes
  // (an Nf4Quantized with its shape and double_quant flag, no codes) and are never converted for it.
  virtual bool needs_weight_values() const { return true; }
  virtual void write(const BTensor& dst, const Tensor& src) = 0;  // host -> backend, blocking
  // Rows [row0, row0 + src.dim(0)) of dst from the host (converted to dst's dtype), blocking: a large table
  // written a chunk at a time, so that it never exists on the host whole. ShapeError when src's rows do not fit.
  virtual void write_rows(const BTensor& dst, std::int64_t row0, const Tensor& src) = 0;
  virtual Tensor read(const BTensor& src) = 0;                    // backend -> host, blocking
  virtual void free_step() = 0;  // releases every Step tensor (and the recording that used them)
  // The same storage under another shape with the same element count (e.g. [T, dim] <-> [T, heads, head_dim]).
  virtual BTensor reshape(const BTensor& t, const Shape& shape) = 0;
  // Rows [row0, row0 + rows) of t's leading dimension, same storage (e.g. one sequence of a [B*S, heads, head_dim]
  // batch, or one chunk of the logits). ShapeError when the range leaves t; the Vulkan backend throws
  // DeviceLimitError when the view's byte offset misses the device's minStorageBufferOffsetAlignment.
  virtual BTensor view_rows(const BTensor& t, std::int64_t row0, std::int64_t rows) = 0;

  // --- recording: ops between begin() and end() form a program. run(p) executes program p, run() the one ended
  // last; any number of times, in any order, until free_step() releases them all. A training step is a few
  // programs (micro-batch forward/backward, optimizer update) recorded once and replayed with new data. ---
  using Program = std::uint32_t;
  virtual void begin() = 0;
  virtual Program end() = 0;
  virtual void run(Program p) = 0;
  virtual void run() = 0;

  // --- ops (recorded) ---
  virtual void fill(const BTensor& t, float value) = 0;
  virtual void matmul(const BTensor& a, const BTensor& b, const BTensor& c, const MatmulOptions& opt) = 0;
  virtual void nf4_matmul(const BTensor& x, const BNf4& w, const BTensor& y, const MatmulOptions& opt) = 0;
  virtual void nf4_matmul_backward(const BNf4& w, const BTensor& dy, const BTensor& dx,
                                   const MatmulOptions& opt) = 0;
  virtual void embedding(const BTensor& ids, const BTensor& table, const BTensor& out) = 0;
  virtual void embedding_backward(const BTensor& ids, const BTensor& dout, const BTensor& dtable) = 0;
  virtual void rmsnorm(const BTensor& x, const BTensor& w, const BTensor& y, const BTensor& rstd, float eps) = 0;
  virtual void rmsnorm_backward(const BTensor& x, const BTensor& w, const BTensor& rstd, const BTensor& dy,
                                const BTensor& dx, const BTensor& dw, bool accumulate_dw) = 0;
  // In place on x; `inverse` rotates by -angle (the backward of rope).
  virtual void rope(const BTensor& x, const BTensor& positions, const BTensor& table, RopeLayout layout,
                    bool inverse) = 0;
  virtual void attention(const BTensor& q, const BTensor& k, const BTensor& v, const BTensor* segments,
                         const BTensor& out, const BTensor& lse, const AttentionOptions& opt) = 0;
  virtual void attention_backward(const BTensor& q, const BTensor& k, const BTensor& v, const BTensor* segments,
                                  const BTensor& out, const BTensor& lse, const BTensor& dout, const BTensor& dq,
                                  const BTensor& dk, const BTensor& dv, const AttentionOptions& opt) = 0;
  // Generation (host/core/op/kv_cache.h): the cache rows at `positions` (i32 [T], read when the program runs) get
  // k and v; the attention of q over the cache rows 0..positions[i]. A decode step recorded once replays for every
  // position the host writes. f32; scale 0 is 1/sqrt(head_dim).
  virtual void kv_cache_write(const BTensor& k, const BTensor& v, const BTensor& positions, const BTensor& k_cache,
                              const BTensor& v_cache) = 0;
  virtual void kv_cache_attention(const BTensor& q, const BTensor& k_cache, const BTensor& v_cache,
                                  const BTensor& positions, const BTensor& out, float scale) = 0;
  virtual void swiglu(const BTensor& g, const BTensor& u, const BTensor& h) = 0;
  virtual void swiglu_backward(const BTensor& g, const BTensor& u, const BTensor& dh, const BTensor& dg,
                               const BTensor& du) = 0;
  virtual void add(const BTensor& a, const BTensor& b, const BTensor& y, float alpha) = 0;
  // `key`: the dropout key, i32 [kLoraKeyWords] (lora_key_tensor), read when the program runs; a recorded step
  // gets a new mask when the host writes a new key. May be id 0 when opt.dropout is 0 (check_lora_key).
  virtual void lora_forward(const BTensor& x, const BTensor& a, const BTensor& b, const BTensor& y,
                            const BTensor& t, const BTensor& key, const LoraOptions& opt) = 0;
  virtual void lora_backward(const BTensor& x, const BTensor& a, const BTensor& b, const BTensor& t,
                             const BTensor& dy, const BTensor& dx, const BTensor& da, const BTensor& db,
                             const BTensor& key, const LoraOptions& opt) = 0;
  // Inference's adapted linear: y = x Wᵀ (+y when opt.accumulate) + scale · (x Aᵀ) Bᵀ with W a plain weight [N, K]
  // and one adapter's A [r, K], B [N, r] f32 (no dropout). `t` f32 [M, r] is scratch for x Aᵀ: a backend that
  // fuses the two products into one pass (Vulkan's few-row GEMV, where the adapter would otherwise cost a
  // dispatch of its own on every linear) leaves it unwritten. The default runs matmul then lora_forward.
  virtual void matmul_lora(const BTensor& x, const BTensor& w, const BTensor& a, const BTensor& b, const BTensor& y,
                           const BTensor& t, float scale, const MatmulOptions& opt);

  // --- training: loss and optimizer. What changes from step to step (the loss scale, the scheduled lr, bias
  // corrections) is read from small tensors the host write()s before each run(), so one recorded step replays. ---
  // logits f32 [T, V] (a row chunk of the step's logits), labels i32 [T] (kIgnoreIndex: masked): writes lse f32 [T]
  // and ADDS (loss sum over valid labels, valid count) to totals f32 [2], which the program fill()s with 0 once per
  // step, so calls over row chunks and micro-batches accumulate (the count is exact up to 2^24 tokens).
  virtual void cross_entropy(const BTensor& logits, const BTensor& labels, const BTensor& lse,
                             const BTensor& totals) = 0;
  // dlogits f32 [T, V] = scale[0] * (softmax(logits) - onehot(labels)), zero rows for masked labels. scale f32 [1]
  // is written by the host (1 / valid tokens of the whole optimizer step: the mean over its micro-batches).
  // dlogits may be logits itself (in place: no second [T, V] buffer).
  virtual void cross_entropy_backward(const BTensor& logits, const BTensor& labels, const BTensor& lse,
                                      const BTensor& scale, const BTensor& dlogits) = 0;
  // Immediate: zeroed optimizer state for a parameter of `param_shape` (Adafactor: 2-D only), named name + ".m" etc.
  BOptimizerState alloc_optimizer_state(const OptimizerConfig& cfg, const Shape& param_shape, const std::string& name);
  // Immediate: the i32 [kGradStatsWords] statistics grad_norm writes and optimizer_step reads (Weights lifetime).
  BTensor alloc_grad_stats();
  // Immediate: the f32 [kStepConstantWords] tensor optimizer_step reads; write step_constants_tensor() before run().
  BTensor alloc_step_constants();
  // Global L2 norm over every f32 gradient, clip scale min(1, max_norm / (norm + 1e-6)) (max_norm <= 0: 1), and
  // the skip flag with the index (in `grads`) of the first tensor holding a NaN/Inf, written to stats.
  virtual void grad_norm(const std::vector<BTensor>& grads, float max_norm, const BTensor& stats) = 0;
  // One update of param f32 (grad scaled by the clip scale) per cfg.kind with the constants in step_consts; does
  // nothing when stats say skip. State from alloc_optimizer_state(cfg, param.shape).
  virtual void optimizer_step(const OptimizerConfig& cfg, const BTensor& step_consts, const BTensor& param,
                              const BTensor& grad, const BOptimizerState& state, const BTensor& stats) = 0;
  // Immediate: the statistics of the last run() (norm, clip scale, skip, first bad tensor).
  GradStats read_grad_stats(const BTensor& stats);
};

// The backend for `kind` on this machine: the CPU backend, or the Vulkan device chosen as `pocketlora devices`
// describes (throws NoDevice when Vulkan is absent or the library was built without it).
// `device` picks a Vulkan device by its index in `pocketlora devices` (default: POCKETLORA_DEVICE, else the best).
std::unique_ptr<Backend> make_backend(BackendKind kind, std::optional<int> device = std::nullopt);

}  // namespace pocketlora
