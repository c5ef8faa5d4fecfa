#pragma once
// One training step's machinery on a backend, recorded once and replayed (host/train/trainer.h drives it; the
// benchmarks and tests use it directly):
//   micro program   forward, cross-entropy per output-head chunk (loss totals +=, dlogits = scale * (softmax -
//                   onehot)), the head's and the body's backward accumulating dA/dB
//   update program  global grad norm + clip + NaN/Inf skip flag, every A and B updated, gradients and totals zeroed
//   eval program    forward (LoRA dropout off) and the loss only (validation)
// Per step the host writes token ids, positions, segments, targets, the LoRA dropout key, the loss scale (1 /
// unmasked tokens of the whole step) and the step constants (scheduled lr, bias corrections), and reads back the
// loss totals and the gradient statistics: the only round trips.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/backend.h"
#include "host/core/op/optimizer.h"
#include "host/model/llama_forward.h"
#include "host/model/llama_model.h"
#include "host/train/lora_adapter.h"
#include "host/train/train_data.h"

namespace pocketlora {

struct StepEngineOptions {
  std::int64_t micro_batch = 1, seq_len = 0;
  bool packed = false;  // windows hold several documents: attention restricted by segment ids
  OptimizerConfig optimizer;
  // LoRA dropout: micro-batch m of step n draws its mask from the key (dropout_seed, n, m), written before each
  // run of the recorded step, so masks differ per step and a resumed run draws the ones it would have drawn.
  std::uint64_t dropout_seed = 0;
  bool checkpointing = false;  // recompute each layer's forward in the backward (LoraStepOptions::checkpointing)
  // Activation storage (LoraStepOptions::activations): unset, the model's dtype; f16: mixed precision.
  std::optional<DType> activations;
};

// Rows per output-head chunk: all the step's tokens when their f32 logits fit 32 MiB (stories260K), else the
// largest multiple of 64 rows dividing `tokens` under that size, so a 128k vocabulary never holds [tokens, vocab]
// at once and every chunk's row views stay aligned for any device.
std::int64_t head_chunk_rows(std::int64_t tokens, std::int64_t vocab);

struct StepMemoryPlan {
  std::uint64_t resident_bytes = 0;        // weights, NF4 base, adapter, gradients, optimizer state
  std::uint64_t step_arena_bytes = 0;      // the step's temporaries in one arena, lifetimes reused
  std::uint64_t step_unplanned_bytes = 0;  // the same temporaries each in its own buffer
  std::uint64_t peak_bytes() const { return resident_bytes + step_arena_bytes; }
};
// The memory of the step `o` describes, planned by recording it on a PlanningBackend: nothing is allocated.
StepMemoryPlan plan_step_memory(const LlamaModel& model, const LoraAdapter& adapter, const StepEngineOptions& o);

struct StepResult {
  double loss = 0;           // mean over the step's unmasked tokens
  std::int64_t targets = 0;  // unmasked tokens
  GradStats stats;           // global norm, clip scale, skipped (NaN/Inf), first bad gradient
};

class TrainStepEngine {
 public:
  // Uploads the model and the adapter, allocates optimizer state (zeroed) and records the programs. `adapter` must
  // outlive the engine (its module list names the tensors); the model is copied to the backend.
  TrainStepEngine(Backend& be, const LlamaModel& model, const LoraAdapter& adapter, const StepEngineOptions& o);
  ~TrainStepEngine();

  // One optimizer step (number `step`, from 1) over `batches` (each micro_batch x seq_len) at learning rate `lr`.
  StepResult step(const std::vector<TokenBatch>& batches, double lr, std::int64_t step);
  // Mean loss over `windows` without an update (nullopt when they hold no target).
  std::optional<double> loss(const std::vector<Example>& windows, std::int32_t pad_id);

  // The adapter ("layers.{i}.{t}.{A|B}", f32) and the optimizer state ("<tensor>.{m|v|row|col}") as they are now.
  std::vector<std::pair<std::string, Tensor>> adapter_tensors();
  std::vector<std::pair<std::string, Tensor>> optimizer_tensors();
  // Restores optimizer state saved by optimizer_tensors(); FormatError naming `where` and a missing tensor.
  void load_optimizer_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors, const std::string& where);

  std::int64_t tokens_per_micro_batch() const;
  const StepEngineOptions& options() const { return o_; }
  Backend& backend() { return be_; }

 private:
  struct Impl;
  Backend& be_;
  StepEngineOptions o_;
  std::unique_ptr<Impl> p_;
};

}  // namespace pocketlora
