#include "tools/train_options.h"

#include <memory>

#include "host/core/error.h"
#include "host/util/byte_size.h"
#include "host/policy/policy_config.h"
#include "host/policy/scripted_timeline.h"
#include "host/policy/sysfs_sensors.h"

namespace pocketlora::cli {

void add_train_options(CLI::App& sub, TrainArgs& a) {
  sub.add_option("--model", a.model, "llama2.c .bin, GGUF, HF safetensors (file or folder) or bnb-4bit model")
      ->required();
  sub.add_option("--data", a.data, "Alpaca JSON/JSONL, chat JSONL or plain text")->required();
  sub.add_option("--tokenizer", a.tokenizer, "tokenizer file (default: the GGUF's, or one beside the model)");
  sub.add_option("--format", a.format, "auto, alpaca, chat, text")->capture_default_str();
  sub.add_option("--template", a.tmpl, "chat template: llama2, llama3, chatml (default: from the tokenizer)");
  sub.add_option("--rank", a.rank, "LoRA rank")->capture_default_str();
  sub.add_option("--alpha", a.alpha, "LoRA alpha (scale alpha/rank)")->capture_default_str();
  sub.add_option("--dropout", a.dropout, "LoRA dropout on the adapter input")->capture_default_str();
  sub.add_flag("--rslora", a.rslora, "scale alpha/sqrt(rank) (rsLoRA)");
  sub.add_option("--targets", a.targets, "q,k,v,o,gate,up,down (or HF names, or all)")->capture_default_str();
  sub.add_option("--lr", a.lr, "peak learning rate")->capture_default_str();
  sub.add_option("--schedule", a.schedule, "constant, linear, cosine")->capture_default_str();
  sub.add_option("--warmup", a.warmup, "linear warmup steps")->capture_default_str();
  sub.add_option("--steps", a.steps, "optimizer steps (0: --epochs)")->capture_default_str();
  sub.add_option("--epochs", a.epochs, "passes over the training windows when --steps is 0")->capture_default_str();
  sub.add_option("--batch", a.batch, "windows per micro-batch")->capture_default_str();
  sub.add_option("--grad-accum", a.grad_accum, "micro-batches per optimizer step")->capture_default_str();
  sub.add_option("--seq-len", a.seq_len, "tokens per window")->capture_default_str();
  sub.add_option("--optimizer", a.optimizer, "adamw, lion, sgd, adafactor")->capture_default_str();
  sub.add_option("--weight-decay", a.weight_decay, "decoupled weight decay")->capture_default_str();
  sub.add_option("--max-grad-norm", a.max_grad_norm, "global gradient clipping (0: off)")->capture_default_str();
  sub.add_option("--max-memory", a.max_memory, "fit the step in this much memory (e.g. 1.5G)");
  sub.add_option("--checkpointing", a.checkpointing,
                 "gradient checkpointing (recompute each layer in the backward): on, off, auto (when --max-memory "
                 "needs it, before shrinking the micro-batch)")
      ->capture_default_str();
  sub.add_option("--embedding-dtype", a.embedding_dtype,
                 "storage of the frozen embedding table and output head: f32, f16, auto (f16 when the f32 tables "
                 "exceed 128 MiB, e.g. a 128k vocabulary)")
      ->capture_default_str();
  sub.add_option("--precision", a.precision,
                 "activation storage: f32, f16 (activations and LoRA inputs f16; adapter, gradients and optimizer "
                 "state f32), auto (f16 on a Vulkan device with 16-bit storage, else f32)")
      ->capture_default_str();
  sub.add_option("--backend", a.backend, "auto (a GPU if present, else cpu), vulkan, cpu")->capture_default_str();
  sub.add_option("--device", a.device, "Vulkan device index (pocketlora devices)");
  sub.add_option("--quant", a.quant, "base linears: nf4 or none (f32)")->capture_default_str();
  sub.add_option("--val-fraction", a.val_fraction, "share of the data held out for validation")->capture_default_str();
  sub.add_option("--val-windows", a.val_windows, "validation windows sampled (each pass runs all of them)")
      ->capture_default_str();
  sub.add_option("--eval-every", a.eval_every, "steps between validation passes (0: 10 per run)");
  sub.add_option("--save-every", a.save_every, "steps between checkpoints (0: 10 per run)");
  sub.add_option("--keep", a.keep, "checkpoints kept")->capture_default_str();
  sub.add_option("--seed", a.seed, "seed of the adapter init, data order and split")->capture_default_str();
}

TrainOptions train_options_from_args(const TrainArgs& a) {
  TrainOptions o;
  o.model = a.model;
  o.tokenizer = a.tokenizer;
  o.data.path = a.data;
  o.data.format = parse_data_format(a.format);
  if (!a.tmpl.empty()) o.data.chat_template = parse_chat_template(a.tmpl);
  o.data.seq_len = a.seq_len;
  o.data.validation_fraction = a.val_fraction;
  o.data.max_validation_windows = a.val_windows;
  o.data.seed = a.seed;
  o.lora.rank = a.rank;
  o.lora.alpha = a.alpha;
  o.lora.dropout = a.dropout;
  o.lora.rslora = a.rslora;
  o.lora.targets = parse_lora_targets(a.targets);
  o.optimizer.kind = parse_optimizer_kind(a.optimizer);
  if (o.optimizer.kind == OptimizerKind::Lion) o.optimizer.beta2 = 0.99f;
  if (o.optimizer.kind == OptimizerKind::Adafactor) o.optimizer.eps = 1e-30f;
  o.optimizer.lr = a.lr;
  o.optimizer.weight_decay = a.weight_decay;
  o.optimizer.max_grad_norm = a.max_grad_norm;
  o.schedule = parse_lr_schedule(a.schedule);
  o.warmup_steps = a.warmup;
  o.steps = a.steps;
  o.epochs = a.epochs;
  o.batch = a.batch;
  o.grad_accum = a.grad_accum;
  o.backend = resolve_backend_kind(a.backend);
  if (a.device >= 0) o.device = a.device;
  o.quant = parse_base_quant(a.quant);
  if (!a.max_memory.empty()) o.max_memory = parse_byte_size(a.max_memory, "--max-memory");
  o.checkpointing = parse_checkpointing_mode(a.checkpointing);
  o.embedding_dtype = parse_table_dtype(a.embedding_dtype);
  o.precision = parse_precision(a.precision);
  o.eval_every = a.eval_every;
  o.save_every = a.save_every;
  o.keep_checkpoints = a.keep;
  o.seed = a.seed;
  return o;
}

void add_policy_options(CLI::App& sub, std::string& policy, std::string& sensors) {
  sub.add_option("--policy", policy,
                 "device policy JSON (docs/POLICY.md): train only while charging, cool down when hot");
  sub.add_option("--sensors", sensors,
                 "device policy sensors: sysfs (default), sysfs:ROOT (a directory standing for /sys) or "
                 "scripted:TIMELINE.json (simulated time; examples/)");
}

std::optional<TrainPolicy> parse_train_policy(const std::string& policy, const std::string& sensors) {
  if (policy.empty() && sensors.empty()) return std::nullopt;
  TrainPolicy p;
  if (!policy.empty()) p.config = load_policy_config(policy);
  const std::string spec = sensors.empty() ? "sysfs" : sensors;
  if (spec == "sysfs" || spec.starts_with("sysfs:")) {
    p.sensors = std::make_shared<SysfsSensors>(spec == "sysfs" ? "/sys" : spec.substr(6));
    p.clock = make_steady_clock();
  } else if (spec.starts_with("scripted:") && spec.size() > 9) {
    auto timeline = ScriptedTimeline::load(spec.substr(9));
    p.sensors = timeline;
    p.clock = timeline;
  } else {
    throw InvalidArgument("--sensors '" + spec + "': expected sysfs, sysfs:ROOT or scripted:TIMELINE.json");
  }
  return p;
}

}  // namespace pocketlora::cli
