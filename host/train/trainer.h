#pragma once
// The training loop of `pocketlora train`, written once over the Backend interface: it loads and checks
// everything before any work, plans the step's memory, records the step's programs once and replays them with
// new data every step, and keeps the run resumable (checkpoint, metrics, adapter) at every save.
//
// One optimizer step = grad_accum micro-batches, each one recorded program (forward, cross-entropy over the
// step's unmasked tokens, backward accumulating dA/dB), then one update program (global grad norm + clip +
// NaN/Inf skip, optimizer update of every A and B, gradients zeroed). Per step the host writes the token ids,
// labels, the loss scale (1 / unmasked tokens of the whole step) and the step constants (scheduled lr, bias
// corrections), and reads back the loss totals and the gradient statistics: the only round trips.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "host/backend/backend.h"
#include "host/core/op/optimizer.h"
#include "host/model/llama_model.h"
#include "host/policy/device_policy.h"
#include "host/policy/sensor_source.h"
#include "host/train/lora_config.h"
#include "host/train/lr_schedule.h"
#include "host/train/step_engine.h"
#include "host/train/train_control.h"
#include "host/train/train_data.h"

namespace pocketlora {

// Gradient checkpointing (StepEngineOptions::checkpointing): Auto turns it on only when the step would not fit
// max_memory without it, before the micro-batch is shrunk.
enum class CheckpointingMode { Off, On, Auto };
const char* checkpointing_mode_name(CheckpointingMode m);          // "off", "on", "auto"
CheckpointingMode parse_checkpointing_mode(const std::string& s);  // InvalidArgument naming the accepted values

// Activation storage (StepEngineOptions::activations): f16 keeps activations and the LoRA compute inputs in f16,
// the residual stream, adapter, gradients and optimizer state in f32 (docs/MIXED_PRECISION.md). Auto: f16 where
// the backend prefers it (Backend::prefers_f16_activations: a Vulkan device with 16-bit storage), else f32; the
// Trainer resolves it when constructed, so checkpoints and reports name f32 or f16.
enum class Precision { F32, F16, Auto };
const char* precision_name(Precision p);  // "f32", "f16", "auto"
Precision parse_precision(const std::string& s);  // InvalidArgument naming the accepted values

// The device policy a run obeys (docs/POLICY.md). The trainer asks it before every optimizer step (the unit a
// checkpoint resumes at exactly): Train; Throttle: idle for the given time, then train; Wait: checkpoint, free the
// step engine and the backend (all device memory: weights live as long as their backend), wait poll_seconds on
// `clock`, ask again, and on Train make the backend and rebuild the engine from that checkpoint. A backend passed
// to the Trainer's constructor cannot be made again: it and the engine are kept through pauses. A scripted
// timeline is both `sensors` and `clock`.
struct TrainPolicy {
  PolicyConfig config;
  std::shared_ptr<SensorSource> sensors;
  std::shared_ptr<PolicyClock> clock;
};

struct TrainOptions {
  std::filesystem::path model;
  std::filesystem::path tokenizer;  // empty: the model file (GGUF), or a tokenizer beside it
  std::filesystem::path out;        // run directory: checkpoints, adapter, metrics, plot
  std::optional<std::filesystem::path> resume;
  TrainDataOptions data;
  LoraConfig lora;
  OptimizerConfig optimizer;  // optimizer.lr is the schedule's base learning rate
  LrScheduleKind schedule = LrScheduleKind::Linear;
  std::int64_t warmup_steps = 0;
  std::int64_t steps = 0;  // optimizer steps; 0: `epochs` passes over the training windows
  std::int64_t epochs = 1;
  std::int64_t batch = 4;  // windows per optimizer step = batch * grad_accum
  std::int64_t grad_accum = 1;
  BackendKind backend = BackendKind::Cpu;
  std::optional<int> device;  // Vulkan device index (`pocketlora devices`)
  BaseQuant quant = BaseQuant::Nf4;
  // `model` already open (deferred) by the caller, e.g. a C API pl_model: the run's base is made from its readers
  // (with_base_quant) instead of opening the file a second time; where it cannot be (an NF4 model for an f32 run),
  // the file is opened here as without it.
  std::shared_ptr<const LlamaModel> open_model;
  std::uint64_t max_memory = 0;  // bytes; 0: no limit
  CheckpointingMode checkpointing = CheckpointingMode::Auto;
  TableDtype embedding_dtype = TableDtype::Auto;  // the frozen embedding table's and head's storage
  Precision precision = Precision::Auto;
  std::int64_t eval_every = 0;   // steps between validation passes; 0: ten per run (and at the end)
  std::int64_t save_every = 0;   // steps between checkpoints; 0: ten per run (and at the end)
  int keep_checkpoints = 2;
  int max_consecutive_skips = 5;  // NaN/Inf steps in a row before the run stops
  std::uint64_t seed = 42;
  std::optional<TrainPolicy> policy;  // none: train without waiting, as fast as the device goes
  // Stop / pause / resume of this run from other threads (the C API). Given: the run neither installs the Ctrl-C
  // handlers nor clears the process-wide stop flag (it still obeys it), and pauses as a policy pause does.
  std::shared_ptr<TrainControl> control;
};

// The run config as a checkpoint records it; `must_match` lists what a resume requires to be equal.
nlohmann::json train_config_json(const TrainOptions& o);

struct MemoryReport {
  std::uint64_t resident_bytes = 0;              // weights, NF4 base, adapter, gradients, optimizer state
  std::uint64_t step_arena_bytes = 0;            // the planned arena of the step's temporaries (lifetimes reused)
  std::uint64_t step_unplanned_bytes = 0;        // the same temporaries each in its own buffer
  std::uint64_t op_scratch_bytes = 0;            // the largest op's own device scratch (0 on the CPU backend)
  std::uint64_t planned_peak_bytes = 0;          // resident + arena + op scratch
  std::int64_t micro_batch = 0, grad_accum = 0;  // as chosen to fit the limit
  // The limit the plan was fitted to: min(--max-memory, the backend's memory budget); 0: none. limit_source says
  // which (and how the budget was found).
  std::uint64_t limit_bytes = 0;
  std::string limit_source;
  bool checkpointing = false;                    // likewise
  // What the backend holds (Backend::memory_in_use), the most over the run: with the step's tensors at their
  // planned offsets, the planned peak plus the backend's own rounding (docs/TRAINING.md).
  std::uint64_t measured_device_bytes = 0;
};

struct StepReport {
  std::int64_t step = 0, total = 0;  // optimizer steps done (1-based) of total
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0;
  bool skipped = false;
  std::optional<double> val_loss;
  std::uint64_t memory_bytes = 0;
  std::string policy_status;  // "cooldown-throttle 43.0 °C"; empty without a policy
};

struct TrainSummary {
  std::int64_t steps_done = 0, total_steps = 0, skipped = 0;
  std::optional<double> first_loss, last_loss, first_val_loss, last_val_loss;
  double seconds = 0, tokens_per_s = 0;
  std::int64_t tokens = 0;   // tokens run through the model (padding included)
  bool interrupted = false;  // Ctrl-C: stopped after a checkpoint
  std::string policy_stop;   // why the device policy ended the run before total_steps (empty otherwise)
  std::filesystem::path checkpoint, adapter_dir, metrics, plot;
  MemoryReport memory;
  std::uint64_t peak_rss_bytes = 0;
};

// The tokenizer of a model: the GGUF itself, a Hugging Face folder's tokenizer file, or a llama2.c tokenizer
// (tokenizer.bin, or the single tok*.bin) beside a .bin checkpoint; InvalidArgument saying where it looked.
std::filesystem::path find_tokenizer(const std::filesystem::path& model);

class Trainer {
 public:
  // Loads the tokenizer, the data and the model and checks every option and the checkpoint to resume from: any
  // bad input is an error here, before a file is written (and before a backend is made, unless Precision::Auto
  // needs one to ask). `backend` overrides options.backend (tests pass one in).
  explicit Trainer(TrainOptions options, std::unique_ptr<Backend> backend = nullptr);
  ~Trainer();

  const TrainOptions& options() const { return opt_; }  // precision resolved (never Auto)
  const TrainData& data() const;
  std::int64_t total_steps() const { return total_steps_; }
  std::int64_t start_step() const;
  // The step's memory plan, made by the constructor (nothing allocated) for the options' batch: when it does not fit
  // max_memory, gradient checkpointing is turned on (CheckpointingMode::Auto), then the micro-batch halved (doubling
  // grad_accum), each micro-batch first without checkpointing; the constructor throws OutOfMemoryError naming the
  // bytes when even 1 does not fit.
  const MemoryReport& plan_memory() const { return plan_; }

  // Trains to total_steps (or until Ctrl-C, or until the policy's sensors end while it waits), calling on_step
  // after every optimizer step and on_policy at every policy transition (each also a metrics.jsonl record
  // {"event":"policy","step","time_s","from","to","reason","readings"}).
  TrainSummary run(const std::function<void(const StepReport&)>& on_step = {},
                   const std::function<void(const PolicyTransition&)>& on_policy = {});

 private:
  struct State;
  StepEngineOptions engine_options(std::int64_t micro_batch, bool checkpointing) const;
  MemoryReport make_plan() const;
  TrainOptions opt_;
  std::unique_ptr<State> s_;
  std::int64_t total_steps_ = 0;
  MemoryReport plan_;
};

}  // namespace pocketlora
