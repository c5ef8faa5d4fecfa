#pragma once
// One training step's machinery on a backend, recorded once and replayed (host/train/trainer.h drives it; the
// benchmarks and tests use it directly):
//   micro program   forward, cross-entropy per output-head chunk (loss totals +=, dlogits = scale * (softmax -
//                   onehot)), the head's and the body's backward accumulating dA/dB
//   update program  global grad norm + clip + NaN/Inf skip flag, every A and B updated, gradients and totals zeroed
//   eval program    forward (LoRA dropout off) and the loss only (validation)
//   score programs  with token_scores and a chunked head: the eval forward once per head chunk (token_losses)
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

// How the frozen embedding table and output head are stored on the backend (upload_llama's table_dtype). Auto:
// f16 when the model's f32 tables (embedding plus an untied head) exceed kF16TableBytes, i.e. a large vocabulary,
// where they are the largest weights of the model (Llama-3.2-1B: 1002 of a 1957 MiB plan in f32) and f16 halves
// them for an input rounding of 2^-11 next to an NF4 base's much coarser one; f32 below it (stories260K), where
// they cost little and the step stays comparable with the f32 references. Another dtype on the host (f64 for
// gradient checks) is uploaded as it is.
enum class TableDtype { Auto, F32, F16 };
TableDtype parse_table_dtype(const std::string& s);  // "auto", "f32", "f16"; InvalidArgument otherwise
const char* table_dtype_name(TableDtype d);
inline constexpr std::uint64_t kF16TableBytes = std::uint64_t{128} << 20;
std::optional<DType> resolve_table_dtype(TableDtype d, const LlamaModel& m);

struct StepEngineOptions {
  std::int64_t micro_batch = 1, seq_len = 0;
  bool packed = false;  // windows hold several documents: attention restricted by segment ids
  OptimizerConfig optimizer;
  // LoRA dropout: micro-batch m of step n draws its mask from the key (dropout_seed, n, m), written before each
  // run of the recorded step, so masks differ per step and a resumed run draws the ones it would have drawn.
  std::uint64_t dropout_seed = 0;
  bool checkpointing = false;  // recompute each layer's forward in the backward (LoraStepOptions::checkpointing)
  TableDtype table_dtype = TableDtype::Auto;  // the embedding table's and the head's storage
  // Place the step's tensors at their planned offsets in one arena (Backend::reserve_step), so tensors whose
  // lifetimes do not overlap share bytes; false: each in its own memory (the unplanned step, for comparison).
  bool planned_arena = true;
  // Activation storage (LoraStepOptions::activations): unset, the model's dtype; f16: mixed precision.
  std::optional<DType> activations;
  // Per-token scores (token_losses, for evaluation): the plan keeps the head's logits and lse for the host to read
  // after the eval program, and when the head runs in several chunks one more program per chunk is recorded, each
  // the body forward + that chunk's head (a body forward per chunk: compute traded for the chunked head's memory).
  bool token_scores = false;
};

// Rows per output-head chunk: all the step's tokens when their f32 logits fit 32 MiB (stories260K), else the
// largest multiple of 64 rows dividing `tokens` under that size, so a 128k vocabulary never holds [tokens, vocab]
// at once and every chunk's row views stay aligned for any device.
std::int64_t head_chunk_rows(std::int64_t tokens, std::int64_t vocab);

struct StepMemoryPlan {
  std::uint64_t resident_bytes = 0;        // weights, NF4 base, adapter, gradients, optimizer state
  std::uint64_t step_arena_bytes = 0;      // the step's temporaries in one arena, lifetimes reused
  std::uint64_t step_unplanned_bytes = 0;  // the same temporaries each in its own buffer
  std::uint64_t op_scratch_bytes = 0;      // the largest op's own device scratch (Backend::*_scratch_bytes)
  StepLayout layout;                       // every step tensor's offset in that arena (Backend::reserve_step)
  std::uint64_t peak_bytes() const { return resident_bytes + step_arena_bytes + op_scratch_bytes; }
};
// The memory of the step `o` describes, planned by recording it (the micro-batch, update and evaluation
// programs) on a PlanningBackend: nothing is allocated. `limits`: the backend's (Backend::step_arena_limits()),
// which the layout's offsets and blocks respect. The second form plans for `be`: its limits, and the op scratch
// it takes (the first counts none).
StepMemoryPlan plan_step_memory(const LlamaModel& model, const LoraAdapter& adapter, const StepEngineOptions& o,
                                const StepArenaLimits& limits = {});
StepMemoryPlan plan_step_memory(const LlamaModel& model, const LoraAdapter& adapter, const StepEngineOptions& o,
                                const Backend& be);

struct StepResult {
  double loss = 0;           // mean over the step's unmasked tokens
  std::int64_t targets = 0;  // unmasked tokens
  GradStats stats;           // global norm, clip scale, skipped (NaN/Inf), first bad gradient
};

class TrainStepEngine {
 public:
  // Plans the step's memory for `be` (plan_step_memory) and reserves it (unless o.planned_arena is false), uploads
  // the model and the adapter, allocates optimizer state (zeroed) and records the programs. `adapter` must
  // outlive the engine (its module list names the tensors); the model is copied to the backend. Destruction
  // releases the backend's step (free_step), so engines on one backend follow each other, one at a time.
  TrainStepEngine(Backend& be, const LlamaModel& model, const LoraAdapter& adapter, const StepEngineOptions& o);
  ~TrainStepEngine();

  // One optimizer step (number `step`, from 1) over `batches` (each micro_batch x seq_len) at learning rate `lr`.
  StepResult step(const std::vector<TokenBatch>& batches, double lr, std::int64_t step);
  // Mean loss over `windows` without an update (nullopt when they hold no target).
  std::optional<double> loss(const std::vector<Example>& windows, std::int32_t pad_id);
  // The eval forward on one micro-batch, per token: result[i] = -log softmax(logits row i)[targets[i]] (the
  // program's log-sum-exp minus the target's logit, both read back after it, per head chunk), NaN where the
  // target is ignored. Needs StepEngineOptions::token_scores (InvalidArgument otherwise).
  std::vector<double> token_losses(const TokenBatch& b);

  // The adapter ("layers.{i}.{t}.{A|B}", f32) and the optimizer state ("<tensor>.{m|v|row|col}") as they are now.
  std::vector<std::pair<std::string, Tensor>> adapter_tensors();
  std::vector<std::pair<std::string, Tensor>> optimizer_tensors();
  // Restores optimizer state saved by optimizer_tensors(); FormatError naming `where` and a missing tensor.
  void load_optimizer_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors, const std::string& where);

  std::int64_t tokens_per_micro_batch() const;
  const StepEngineOptions& options() const { return o_; }
  // The plan the step's tensors were placed by (for the backend's limits; applied when o.planned_arena).
  const StepMemoryPlan& memory_plan() const;
  Backend& backend() { return be_; }

 private:
  struct Impl;
  Backend& be_;
  StepEngineOptions o_;
  std::unique_ptr<Impl> p_;
};

}  // namespace pocketlora
