#pragma once
// A Backend that runs nothing and remembers everything: the step code (written
// once over Backend) is recorded into it to learn, before a byte of device
// memory is allocated, every tensor the step creates, its size and the first
// and last op that touches it. From that, plan_memory
// (host/train/memory_plan.h) gives the step arena, and the resident bytes
// (weights, NF4 base, adapter, optimizer state) are summed: the step's planned
// peak. Views (reshape, view_rows) count as uses of the tensor they view.
// read() returns zeros of the right shape.
//
// Lifetimes are per program: a tensor is live from the first to the last op
// that touches it in each program it is used by, and dead between programs —
// a step tensor carries no value from one program to another. What the host
// writes (token ids, targets, the rope table) is kept for the whole step
// instead: it is written before a run, outside any op; what the host reads
// lives on to the read. step_layout() is the plan a real backend applies
// (Backend::reserve_step).
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/backend.h"
#include "host/train/memory_plan.h"

namespace pocketlora {

class PlanningBackend final : public Backend {
 public:
  explicit PlanningBackend(std::uint64_t alignment = 256) : limits_{alignment, 0} {}
  // Offsets for a backend with these limits (Backend::step_arena_limits()), and, with `scratch_model`, the op
  // scratch that backend takes (op_scratch_bytes: the largest op's; nullptr counts none).
  explicit PlanningBackend(const StepArenaLimits& limits, const Backend* scratch_model = nullptr)
      : limits_(limits), scratch_model_(scratch_model) {}
  BackendKind kind() const override { return BackendKind::Cpu; }
  std::string describe() const override { return "planning (records sizes and lifetimes, runs nothing)"; }
  std::uint64_t memory_in_use() const override { return 0; }  // it holds nothing
  StepArenaLimits step_arena_limits() const override { return limits_; }
  void reserve_step(const StepLayout&) override {}  // it places nothing

  BTensor alloc(const Shape& shape, DType dtype, Lifetime life, const std::string& name) override;
  BNf4 upload_nf4(const Nf4Quantized& w, const std::string& name) override;
  bool needs_weight_values() const override { return false; }
  void write(const BTensor& dst, const Tensor& src) override;
  void write_rows(const BTensor& dst, std::int64_t row0, const Tensor& src) override;
  Tensor read(const BTensor& src) override;
  void free_step() override;
  BTensor reshape(const BTensor& t, const Shape& shape) override;
  BTensor view_rows(const BTensor& t, std::int64_t row0, std::int64_t rows) override;

  void begin() override { recording_ = ++programs_; }
  Program end() override {
    recording_ = 0;
    return programs_;
  }
  void run(Program) override {}
  void run() override {}

  void fill(const BTensor& t, float) override { touch({&t}); }
  void matmul(const BTensor& a, const BTensor& b, const BTensor& c, const MatmulOptions&) override {
    touch({&a, &b, &c});
  }
  void nf4_matmul(const BTensor& x, const BNf4&, const BTensor& y, const MatmulOptions&) override { touch({&x, &y}); }
  void nf4_matmul_backward(const BNf4&, const BTensor& dy, const BTensor& dx, const MatmulOptions&) override {
    touch({&dy, &dx});
  }
  void embedding(const BTensor& ids, const BTensor& table, const BTensor& out) override { touch({&ids, &table, &out}); }
  void embedding_backward(const BTensor& ids, const BTensor& dout, const BTensor& dtable) override {
    touch({&ids, &dout, &dtable});
  }
  void rmsnorm(const BTensor& x, const BTensor& w, const BTensor& y, const BTensor& rstd, float) override {
    touch({&x, &w, &y, &rstd});
  }
  void rmsnorm_backward(const BTensor& x, const BTensor& w, const BTensor& rstd, const BTensor& dy, const BTensor& dx,
                        const BTensor& dw, bool) override {
    touch({&x, &w, &rstd, &dy, &dx, &dw});
  }
  void rope(const BTensor& x, const BTensor& positions, const BTensor& table, RopeLayout, bool) override {
    touch({&x, &positions, &table});
  }
  void attention(const BTensor& q, const BTensor& k, const BTensor& v, const BTensor* segments, const BTensor& out,
                 const BTensor& lse, const AttentionOptions& opt) override {
    touch({&q, &k, &v, segments, &out, &lse});
    if (scratch_model_) note_scratch(scratch_model_->attention_scratch_bytes(q.shape, k.shape, opt, false));
  }
  void attention_backward(const BTensor& q, const BTensor& k, const BTensor& v, const BTensor* segments,
                          const BTensor& out, const BTensor& lse, const BTensor& dout, const BTensor& dq,
                          const BTensor& dk, const BTensor& dv, const AttentionOptions& opt) override {
    touch({&q, &k, &v, segments, &out, &lse, &dout, &dq, &dk, &dv});
    if (scratch_model_) note_scratch(scratch_model_->attention_scratch_bytes(q.shape, k.shape, opt, true));
  }
  void kv_cache_write(const BTensor& k, const BTensor& v, const BTensor& positions, const BTensor& k_cache,
                      const BTensor& v_cache) override {
    touch({&k, &v, &positions, &k_cache, &v_cache});
  }
  void kv_cache_attention(const BTensor& q, const BTensor& k_cache, const BTensor& v_cache, const BTensor& positions,
                          const BTensor& out, float) override {
    touch({&q, &k_cache, &v_cache, &positions, &out});
  }
  void swiglu(const BTensor& g, const BTensor& u, const BTensor& h) override { touch({&g, &u, &h}); }
  void swiglu_backward(const BTensor& g, const BTensor& u, const BTensor& dh, const BTensor& dg,
                       const BTensor& du) override {
    touch({&g, &u, &dh, &dg, &du});
  }
  void add(const BTensor& a, const BTensor& b, const BTensor& y, float) override { touch({&a, &b, &y}); }
  void lora_forward(const BTensor& x, const BTensor& a, const BTensor& b, const BTensor& y, const BTensor& t,
                    const BTensor& key, const LoraOptions& opt) override {
    touch({&x, &a, &b, &y, &t, &key});
    if (scratch_model_) note_scratch(scratch_model_->lora_scratch_bytes(x.shape, x.dtype, a.shape.at(0), opt, false));
  }
  void lora_backward(const BTensor& x, const BTensor& a, const BTensor& b, const BTensor& t, const BTensor& dy,
                     const BTensor& dx, const BTensor& da, const BTensor& db, const BTensor& key,
                     const LoraOptions& opt) override {
    touch({&x, &a, &b, &t, &dy, &dx, &da, &db, &key});
    if (scratch_model_) note_scratch(scratch_model_->lora_scratch_bytes(x.shape, x.dtype, a.shape.at(0), opt, true));
  }

  void cross_entropy(const BTensor& logits, const BTensor& labels, const BTensor& lse, const BTensor& totals) override {
    touch({&logits, &labels, &lse, &totals});
    if (scratch_model_) note_scratch(scratch_model_->cross_entropy_scratch_bytes(logits.shape.at(0)));
  }
  void cross_entropy_backward(const BTensor& logits, const BTensor& labels, const BTensor& lse, const BTensor& scale,
                              const BTensor& dlogits) override {
    touch({&logits, &labels, &lse, &scale, &dlogits});
  }
  void grad_norm(const std::vector<BTensor>& grads, float, const BTensor& stats) override {
    for (const auto& g : grads) touch({&g, &stats});
  }
  void optimizer_step(const OptimizerConfig& cfg, const BTensor& step_consts, const BTensor& param, const BTensor& grad,
                      const BOptimizerState& state, const BTensor& stats) override {
    touch({&step_consts, &param, &grad, &state.m, &state.v, &state.row, &state.col, &stats});
    if (scratch_model_) note_scratch(scratch_model_->optimizer_scratch_bytes(cfg));
  }

  // What was recorded since construction (or the last free_step()).
  // Weights lifetime + NF4 uploads, each allocation as the backend holds it (StepArenaLimits::resident_alignment).
  std::uint64_t resident_bytes() const { return resident_bytes_; }
  std::vector<PlannedTensor> step_tensors() const;
  MemoryPlan step_plan() const { return plan_memory(step_tensors(), limits_.alignment, limits_.block_bytes); }
  // step_plan() as offsets for each Step allocation, in allocation order (for Backend::reserve_step).
  StepLayout step_layout() const;
  std::uint64_t step_tensor_bytes() const;  // every step tensor in its own buffer (no reuse)
  std::int64_t ops() const { return op_; }
  std::uint64_t op_scratch_bytes() const { return op_scratch_; }  // the largest op's (0 without a scratch model)

 private:
  struct Entry {
    std::string name;
    std::uint64_t bytes = 0;
    Lifetime life = Lifetime::Step;
    std::uint32_t base = 0;  // the allocation a view belongs to (its own id for an allocation)
    // [first, last] op that touched it, one span per program it is used in (the last span's program: `program`)
    std::vector<std::pair<std::int64_t, std::int64_t>> spans;
    Program program = 0;
    bool host = false;      // written by the host (before some run): live for the whole step
    std::int64_t made = 0;  // ops recorded before it was allocated
    Shape shape;
    DType dtype = DType::F32;
  };
  void touch(std::initializer_list<const BTensor*> ts);
  void host_write(const BTensor& t);
  void note_scratch(std::uint64_t bytes) { op_scratch_ = std::max(op_scratch_, bytes); }
  std::uint64_t held(std::uint64_t bytes) const;  // a resident allocation as the backend holds it (aligned)
  Entry& entry(const BTensor& t);

  StepArenaLimits limits_;
  const Backend* scratch_model_ = nullptr;
  std::uint64_t op_scratch_ = 0;
  std::vector<Entry> entries_;  // index = id - 1
  std::uint64_t resident_bytes_ = 0;
  std::int64_t op_ = 0;
  std::uint32_t nf4_count_ = 0;
  Program programs_ = 0;
  Program recording_ = 0;  // the program being recorded (0: none; an immediate access)
};

}  // namespace pocketlora
