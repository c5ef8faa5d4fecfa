#pragma once
// The CPU backend: host/ref kernels behind the Backend interface. A program is the list of calls made between
// begin() and end(); run(p) replays it. Tensors are looked up by id when the call runs, so write() between runs
// feeds new data to the same program, as on the GPU.
#include <functional>
#include <memory>
#include <vector>

#include "host/backend/backend.h"

namespace pocketlora::ref {

class CpuBackend final : public Backend {
 public:
  // Sets Eigen to one thread: the f64 kernels' Eigen products would otherwise start OpenMP teams whose workers
  // spin-wait on the cores the backend's pool needs (host/ref/parallel.h).
  CpuBackend();
  BackendKind kind() const override { return BackendKind::Cpu; }
  std::string describe() const override;
  std::uint64_t memory_in_use() const override;
  StepArenaLimits step_arena_limits() const override;
  void reserve_step(const StepLayout& layout) override;  // one host allocation of layout.arena_bytes

  BTensor alloc(const Shape& shape, DType dtype, Lifetime life, const std::string& name) override;
  BNf4 upload_nf4(const Nf4Quantized& w, const std::string& name) override;
  BNf4 adopt_nf4(Nf4Quantized&& w, const std::string& name) override;
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
  struct Slot {
    Tensor t;
    Lifetime life = Lifetime::Step;
    std::string name;
    bool no_host_writes = false;  // placed by a step layout that did not plan a host write
  };
  struct Nf4Slot {
    Nf4Quantized q;  // kept 4-bit: ref::nf4_matmul decodes panels on the fly
  };
  Tensor& at(const BTensor& h);
  Tensor* opt_at(const BTensor* h) { return h ? &at(*h) : nullptr; }
  LoraDropoutKey lora_key(const BTensor& key);
  const Nf4Slot& nf4_at(const BNf4& h) const;
  void record(std::function<void()> call);

  bool in_step_arena(const void* p) const;

  std::vector<Slot> slots_;  // index = id - 1
  StepPlacer placer_;
  std::shared_ptr<std::byte> step_arena_;  // the reserved layout's arena; its step tensors are views into it
  std::uint64_t step_arena_bytes_ = 0;
  std::vector<Nf4Slot> nf4_;
  std::vector<std::vector<std::function<void()>>> programs_;  // program p is programs_[p - 1]
  bool recording_ = false;
};

}  // namespace pocketlora::ref
