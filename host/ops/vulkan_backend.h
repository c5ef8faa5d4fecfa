#pragma once
// The Vulkan backend: host/ops kernels behind the Backend interface. A program is one vk::Sequence (one command
// buffer, barriers derived from declared accesses); run(p) resubmits it, so a planned step costs the host one
// submit per program. Scratch the ops need while recording (LoRA intermediates, attention scratch) comes from a
// program arena that lives until free_step(), as the programs do; each op rewinds it (op_scratch), so its size is
// the largest op's scratch.
#include <memory>
#include <vector>

#include "host/backend/backend.h"
#include "host/ops/device_tensor.h"
#include "host/ops/nf4_matmul.h"
#include "runtime/command.h"
#include "runtime/device.h"

namespace pocketlora::ops {

class VulkanBackend final : public Backend {
 public:
  explicit VulkanBackend(vk::Device& dev);                  // borrows a device (tests share one)
  explicit VulkanBackend(std::unique_ptr<vk::Device> dev);  // owns it
  ~VulkanBackend() override;

  BackendKind kind() const override { return BackendKind::Vulkan; }
  std::string describe() const override;
  std::uint64_t memory_in_use() const override;
  std::vector<MemoryUse> memory_breakdown() const override;
  std::optional<MemoryBudget> memory_budget() const override;
  // Offsets aligned to max(16, minStorageBufferOffsetAlignment); blocks of at most min(maxStorageBufferRange,
  // maxMemoryAllocationSize, the device's arena block size), so every planned tensor binds in one block.
  StepArenaLimits step_arena_limits() const override;
  std::uint64_t attention_scratch_bytes(const Shape& q, const Shape& k, const AttentionOptions& opt,
                                        bool backward) const override;
  std::uint64_t lora_scratch_bytes(const Shape& x, DType x_dtype, std::int64_t rank, const LoraOptions& opt,
                                   bool backward) const override;
  std::uint64_t cross_entropy_scratch_bytes(std::int64_t rows) const override;
  std::uint64_t optimizer_scratch_bytes(const OptimizerConfig& cfg) const override;
  void reserve_step(const StepLayout& layout) override;  // one buffer per block of the layout
  vk::Device& device() { return dev_; }
  bool prefers_f16_activations() const override;

  BTensor alloc(const Shape& shape, DType dtype, Lifetime life, const std::string& name) override;
  BNf4 upload_nf4(const Nf4Quantized& w, const std::string& name) override;
  void write(const BTensor& dst, const Tensor& src) override;
  void write_rows(const BTensor& dst, std::int64_t row0, const Tensor& src) override;
  Tensor read(const BTensor& src) override;
  void free_step() override;
  BTensor reshape(const BTensor& t, const Shape& shape) override;
  BTensor view_rows(const BTensor& t, std::int64_t row0, std::int64_t rows) override;

  void begin() override;
  Program end() override;
  void run(Program p) override;
  void run() override;

  void fill(const BTensor& t, float value) override;
  void matmul(const BTensor& a, const BTensor& b, const BTensor& c, const MatmulOptions& opt) override;
  void nf4_matmul(const BTensor& x, const BNf4& w, const BTensor& y, const MatmulOptions& opt) override;
  void nf4_matmul_backward(const BNf4& w, const BTensor& dy, const BTensor& dx, const MatmulOptions& opt) override;
  void embedding(const BTensor& ids, const BTensor& table, const BTensor& out) override;
  void embedding_backward(const BTensor& ids, const BTensor& dout, const BTensor& dtable) override;
  void rmsnorm(const BTensor& x, const BTensor& w, const BTensor& y, const BTensor& rstd, float eps) override;
  void rmsnorm_backward(const BTensor& x, const BTensor& w, const BTensor& rstd, const BTensor& dy,
                        const BTensor& dx, const BTensor& dw, bool accumulate_dw) override;
  void rope(const BTensor& x, const BTensor& positions, const BTensor& table, RopeLayout layout,
            bool inverse) override;
  void attention(const BTensor& q, const BTensor& k, const BTensor& v, const BTensor* segments, const BTensor& out,
                 const BTensor& lse, const AttentionOptions& opt) override;
  void attention_backward(const BTensor& q, const BTensor& k, const BTensor& v, const BTensor* segments,
                          const BTensor& out, const BTensor& lse, const BTensor& dout, const BTensor& dq,
                          const BTensor& dk, const BTensor& dv, const AttentionOptions& opt) override;
  void kv_cache_write(const BTensor& k, const BTensor& v, const BTensor& positions, const BTensor& k_cache,
                      const BTensor& v_cache) override;
  void kv_cache_attention(const BTensor& q, const BTensor& k_cache, const BTensor& v_cache, const BTensor& positions,
                          const BTensor& out, float scale) override;
  void swiglu(const BTensor& g, const BTensor& u, const BTensor& h) override;
  void swiglu_backward(const BTensor& g, const BTensor& u, const BTensor& dh, const BTensor& dg,
                       const BTensor& du) override;
  void add(const BTensor& a, const BTensor& b, const BTensor& y, float alpha) override;
  void matmul_lora(const BTensor& x, const BTensor& w, const BTensor& a, const BTensor& b, const BTensor& y,
                   const BTensor& t, float scale, const MatmulOptions& opt) override;
  void lora_forward(const BTensor& x, const BTensor& a, const BTensor& b, const BTensor& y, const BTensor& t,
                    const BTensor& key, const LoraOptions& opt) override;
  void lora_backward(const BTensor& x, const BTensor& a, const BTensor& b, const BTensor& t, const BTensor& dy,
                     const BTensor& dx, const BTensor& da, const BTensor& db, const BTensor& key,
                     const LoraOptions& opt) override;

  void cross_entropy(const BTensor& logits, const BTensor& labels, const BTensor& lse, const BTensor& totals) override;
  void cross_entropy_backward(const BTensor& logits, const BTensor& labels, const BTensor& lse, const BTensor& scale,
                              const BTensor& dlogits) override;
  void grad_norm(const std::vector<BTensor>& grads, float max_norm, const BTensor& stats) override;
  void optimizer_step(const OptimizerConfig& cfg, const BTensor& step_consts, const BTensor& param,
                      const BTensor& grad, const BOptimizerState& state, const BTensor& stats) override;

 private:
  // A tensor is one binding when it fits maxStorageBufferRange, else rows split across bindings (only the ops
  // that walk rows — embedding, and matmul's B: the output head — accept that form).
  struct Slot {
    RowChunkedTensor rows;
    Lifetime life = Lifetime::Step;
    std::string name;
    bool live = true;
    bool no_host_writes = false;  // placed by a step layout that did not plan a host write
  };
  Slot& slot(const BTensor& h);
  const DeviceTensor& at(const BTensor& h);
  const Nf4Weight& nf4_at(const BNf4& h) const;
  vk::Sequence& seq();

  std::unique_ptr<vk::Device> owned_;
  vk::Device& dev_;
  vk::Arena& op_scratch();  // the program arena, rewound: scratch that lives within one op
  std::unique_ptr<vk::Arena> weights_, step_, program_;
  StepPlacer placer_;
  std::unique_ptr<vk::PlannedArena> planned_;  // the reserved layout's arena (step_ takes what it does not plan)
  std::vector<Slot> slots_;
  std::vector<Nf4Weight> nf4_;
  std::vector<std::unique_ptr<vk::Sequence>> programs_;  // program p is programs_[p - 1]
  bool recording_ = false;
};

}  // namespace pocketlora::ops
