// `pocketlora train --model PATH --data PATH [...]`: LoRA fine-tuning (host/train/trainer.h) with a live progress
// line, the adapter in PEFT format, checkpoints, metrics.jsonl and loss.svg in --out, and a summary at the end.
#include <fmt/format.h>

#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/policy/policy_config.h"
#include "host/policy/scripted_timeline.h"
#include "host/policy/sysfs_sensors.h"
#include "host/train/trainer.h"
#include "tools/command_registry.h"
#include "tools/progress_bar.h"

namespace pocketlora::cli {
namespace {

struct TrainArgs {
  std::string model, data, tokenizer, out = "pocketlora-run", resume;
  std::string format = "auto", tmpl, backend = "auto", optimizer = "adamw", schedule = "linear", quant = "nf4";
  std::string policy, sensors;  // device policy file; sysfs[:ROOT] | scripted:TIMELINE.json
  std::string targets = "all", max_memory, checkpointing = "auto", embedding_dtype = "auto", precision = "auto";
  std::int64_t rank = 8, steps = 0, epochs = 1, batch = 4, grad_accum = 1, seq_len = 256, warmup = 0;
  std::int64_t eval_every = 0, save_every = 0;
  float alpha = 16, dropout = 0, lr = 2e-4f, weight_decay = 0, max_grad_norm = 1.0f;
  double val_fraction = 0.05;
  std::int64_t val_windows = 64;
  bool rslora = false, json = false;
  int device = -1, keep = 2;
  std::uint64_t seed = 42;
};

// "1.5G", "800M", "64K" (powers of 1024) or a plain byte count.
std::uint64_t parse_bytes(const std::string& s) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::logic_error&) {
    used = 0;
  }
  const std::string unit = s.substr(used);
  double mul = 1;
  if (unit == "K" || unit == "KiB" || unit == "k") mul = 1024.0;
  else if (unit == "M" || unit == "MiB") mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "GiB") mul = 1024.0 * 1024 * 1024;
  else if (!unit.empty() || used == 0) mul = -1;
  if (mul < 0 || !(v > 0))
    throw InvalidArgument("--max-memory '" + s + "': expected a size such as 1.5G, 800M or a byte count");
  return static_cast<std::uint64_t>(v * mul);
}

OptimizerKind parse_optimizer(const std::string& s) {
  if (s == "adamw") return OptimizerKind::AdamW;
  if (s == "lion") return OptimizerKind::Lion;
  if (s == "sgd") return OptimizerKind::SGD;
  if (s == "adafactor") return OptimizerKind::Adafactor;
  throw InvalidArgument("--optimizer '" + s + "': expected adamw, lion, sgd or adafactor");
}

CheckpointingMode parse_checkpointing(const std::string& s) {
  if (s == "on") return CheckpointingMode::On;
  if (s == "off") return CheckpointingMode::Off;
  if (s == "auto") return CheckpointingMode::Auto;
  throw InvalidArgument("--checkpointing '" + s + "': expected on, off or auto");
}

Precision parse_precision(const std::string& s) {
  if (s == "f32") return Precision::F32;
  if (s == "f16") return Precision::F16;
  if (s == "auto") return Precision::Auto;
  throw InvalidArgument("--precision '" + s + "': expected f32, f16 or auto");
}

// --policy FILE and/or --sensors SPEC: either turns the device policy on (default thresholds without --policy,
// sysfs sensors without --sensors).
std::optional<TrainPolicy> parse_train_policy(const TrainArgs& a) {
  if (a.policy.empty() && a.sensors.empty()) return std::nullopt;
  TrainPolicy p;
  if (!a.policy.empty()) p.config = load_policy_config(a.policy);
  const std::string spec = a.sensors.empty() ? "sysfs" : a.sensors;
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

int run_train(const TrainArgs& a) {
  TrainOptions o;
  o.model = a.model;
  o.tokenizer = a.tokenizer;
  o.out = a.out;
  if (!a.resume.empty()) o.resume = a.resume;
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
  o.optimizer.kind = parse_optimizer(a.optimizer);
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
  if (!a.max_memory.empty()) o.max_memory = parse_bytes(a.max_memory);
  o.checkpointing = parse_checkpointing(a.checkpointing);
  o.embedding_dtype = parse_table_dtype(a.embedding_dtype);
  o.precision = parse_precision(a.precision);
  o.eval_every = a.eval_every;
  o.save_every = a.save_every;
  o.keep_checkpoints = a.keep;
  o.seed = a.seed;
  o.policy = parse_train_policy(a);

  Trainer trainer(o);
  const auto& ds = trainer.data().stats();
  const MemoryReport& plan = trainer.plan_memory();
  if (!a.json) {
    fmt::print("model {} ({} base), backend {}, {} activations\n", a.model, a.quant, backend_kind_name(o.backend),
               precision_name(trainer.options().precision));
    fmt::print("data {}: {} records -> {} train / {} validation windows of {} tokens ({})\n", a.data, ds.records,
               ds.train_windows, ds.validation_windows, a.seq_len,
               ds.packed ? fmt::format("packed, {:.0f}% filled, {} long documents split", ds.fill * 100, ds.split)
                         : fmt::format("one example per window, {} truncated, {} dropped with no target left",
                                       ds.truncated, ds.dropped_no_targets));
    fmt::print("LoRA r={} alpha={} on {}; {} lr {} ({} schedule, warmup {}); {} steps of {} x {} windows{}\n", a.rank,
               a.alpha, a.targets, a.optimizer, a.lr, a.schedule, a.warmup, trainer.total_steps(), plan.micro_batch,
               plan.grad_accum,
               trainer.start_step() > 0 ? fmt::format(" (resuming after step {})", trainer.start_step()) : "");
    fmt::print("memory plan: {} resident + {} step arena (lifetimes reused; {} without reuse) + {} op scratch = {} peak{}\n",
               human_bytes(plan.resident_bytes), human_bytes(plan.step_arena_bytes),
               human_bytes(plan.step_unplanned_bytes), human_bytes(plan.op_scratch_bytes),
               human_bytes(plan.planned_peak_bytes),
               plan.checkpointing ? ", gradient checkpointing" : "");
    if (plan.limit_bytes) fmt::print("memory limit: {} ({})\n", human_bytes(plan.limit_bytes), plan.limit_source);
  }
  ProgressBar bar;
  const TrainSummary s = trainer.run(
      [&](const StepReport& r) {
        if (a.json) return;
        bar.update({r.step, r.total, r.loss, r.lr, r.tokens_per_s, r.memory_bytes, r.skipped, r.policy_status});
        if (r.val_loss && !bar.interactive()) fmt::print("  validation loss {:.4f}\n", *r.val_loss);
      },
      [&](const PolicyTransition& t) {
        if (a.json) return;
        bar.finish();
        fmt::print("policy: {} -> {} at t={:.0f}s: {}\n", t.from, t.to, t.time_s, t.reason);
      });
  bar.finish();
  auto opt_num = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  if (a.json) {
    std::cout << nlohmann::json{{"steps", s.steps_done},
                                {"total_steps", s.total_steps},
                                {"skipped", s.skipped},
                                {"interrupted", s.interrupted},
                                {"policy_stop", s.policy_stop},
                                {"first_loss", opt_num(s.first_loss)},
                                {"last_loss", opt_num(s.last_loss)},
                                {"first_val_loss", opt_num(s.first_val_loss)},
                                {"last_val_loss", opt_num(s.last_val_loss)},
                                {"seconds", s.seconds},
                                {"tokens_per_s", s.tokens_per_s},
                                {"planned_peak_bytes", s.memory.planned_peak_bytes},
                                {"step_arena_bytes", s.memory.step_arena_bytes},
                                {"op_scratch_bytes", s.memory.op_scratch_bytes},
                                {"checkpointing", s.memory.checkpointing},
                                {"precision", precision_name(trainer.options().precision)},
                                {"measured_device_bytes", s.memory.measured_device_bytes},
                                {"memory_limit_bytes", s.memory.limit_bytes},
                                {"memory_limit_source", s.memory.limit_source},
                                {"peak_rss_bytes", s.peak_rss_bytes},
                                {"checkpoint", s.checkpoint.string()},
                                {"adapter", s.adapter_dir.string()},
                                {"metrics", s.metrics.string()},
                                {"plot", s.plot.string()}}
                     .dump(2)
              << "\n";
    return 0;
  }
  if (!s.policy_stop.empty()) fmt::print("stopped by the device policy: {}\n", s.policy_stop);
  if (s.checkpoint.empty()) {  // stopped (policy, Ctrl-C) before the first step
    fmt::print("nothing trained: no checkpoint or adapter written (metrics: {})\n", s.metrics.string());
    return 0;
  }
  fmt::print("{} {} of {} steps in {:.1f} s ({:.0f} tokens/s{})\n",
             s.interrupted ? "interrupted after" : !s.policy_stop.empty() ? "stopped after" : "done:", s.steps_done, s.total_steps, s.seconds, s.tokens_per_s,
             s.skipped ? fmt::format(", {} skipped", s.skipped) : "");
  if (s.first_loss && s.last_loss) fmt::print("train loss {:.4f} -> {:.4f}\n", *s.first_loss, *s.last_loss);
  if (s.first_val_loss && s.last_val_loss)
    fmt::print("validation loss {:.4f} -> {:.4f} ({:+.1f}%)\n", *s.first_val_loss, *s.last_val_loss,
               (*s.last_val_loss / *s.first_val_loss - 1) * 100);
  fmt::print("memory: planned peak {} ({} step arena, as placed), device {} measured, host peak RSS {}\n",
             human_bytes(s.memory.planned_peak_bytes), human_bytes(s.memory.step_arena_bytes),
             human_bytes(s.memory.measured_device_bytes), human_bytes(s.peak_rss_bytes));
  fmt::print("adapter (PEFT): {}\ncheckpoint: {}\nmetrics: {}\nloss plot: {}\n",
             (s.adapter_dir / "adapter_model.safetensors").string(), s.checkpoint.string(), s.metrics.string(),
             s.plot.string());
  if (s.interrupted || !s.policy_stop.empty()) fmt::print("resume with: --resume {}\n", a.out);
  return 0;
}

CommandRegistration reg("train", "Fine-tune a LoRA adapter on a (frozen, NF4) base model", [](CLI::App& sub) -> Action {
  auto a = std::make_shared<TrainArgs>();
  sub.add_option("--model", a->model, "llama2.c .bin, GGUF, HF safetensors (file or folder) or bnb-4bit model")
      ->required();
  sub.add_option("--data", a->data, "Alpaca JSON/JSONL, chat JSONL or plain text")->required();
  sub.add_option("--tokenizer", a->tokenizer, "tokenizer file (default: the GGUF's, or one beside the model)");
  sub.add_option("--format", a->format, "auto, alpaca, chat, text")->capture_default_str();
  sub.add_option("--template", a->tmpl, "chat template: llama2, llama3, chatml (default: from the tokenizer)");
  sub.add_option("--rank", a->rank, "LoRA rank")->capture_default_str();
  sub.add_option("--alpha", a->alpha, "LoRA alpha (scale alpha/rank)")->capture_default_str();
  sub.add_option("--dropout", a->dropout, "LoRA dropout on the adapter input")->capture_default_str();
  sub.add_flag("--rslora", a->rslora, "scale alpha/sqrt(rank) (rsLoRA)");
  sub.add_option("--targets", a->targets, "q,k,v,o,gate,up,down (or HF names, or all)")->capture_default_str();
  sub.add_option("--lr", a->lr, "peak learning rate")->capture_default_str();
  sub.add_option("--schedule", a->schedule, "constant, linear, cosine")->capture_default_str();
  sub.add_option("--warmup", a->warmup, "linear warmup steps")->capture_default_str();
  sub.add_option("--steps", a->steps, "optimizer steps (0: --epochs)")->capture_default_str();
  sub.add_option("--epochs", a->epochs, "passes over the training windows when --steps is 0")->capture_default_str();
  sub.add_option("--batch", a->batch, "windows per micro-batch")->capture_default_str();
  sub.add_option("--grad-accum", a->grad_accum, "micro-batches per optimizer step")->capture_default_str();
  sub.add_option("--seq-len", a->seq_len, "tokens per window")->capture_default_str();
  sub.add_option("--optimizer", a->optimizer, "adamw, lion, sgd, adafactor")->capture_default_str();
  sub.add_option("--weight-decay", a->weight_decay, "decoupled weight decay")->capture_default_str();
  sub.add_option("--max-grad-norm", a->max_grad_norm, "global gradient clipping (0: off)")->capture_default_str();
  sub.add_option("--max-memory", a->max_memory, "fit the step in this much memory (e.g. 1.5G)");
  sub.add_option("--checkpointing", a->checkpointing,
                 "gradient checkpointing (recompute each layer in the backward): on, off, auto (when --max-memory "
                 "needs it, before shrinking the micro-batch)")
      ->capture_default_str();
  sub.add_option("--embedding-dtype", a->embedding_dtype,
                 "storage of the frozen embedding table and output head: f32, f16, auto (f16 when the f32 tables "
                 "exceed 128 MiB, e.g. a 128k vocabulary)")
      ->capture_default_str();
  sub.add_option("--precision", a->precision,
                 "activation storage: f32, f16 (activations and LoRA inputs f16; adapter, gradients and optimizer "
                 "state f32), auto (f16 on a Vulkan device with 16-bit storage, else f32)")
      ->capture_default_str();
  sub.add_option("--backend", a->backend, "auto (a GPU if present, else cpu), vulkan, cpu")->capture_default_str();
  sub.add_option("--device", a->device, "Vulkan device index (pocketlora devices)");
  sub.add_option("--quant", a->quant, "base linears: nf4 or none (f32)")->capture_default_str();
  sub.add_option("--val-fraction", a->val_fraction, "share of the data held out for validation")->capture_default_str();
  sub.add_option("--val-windows", a->val_windows, "validation windows sampled (each pass runs all of them)")
      ->capture_default_str();
  sub.add_option("--eval-every", a->eval_every, "steps between validation passes (0: 10 per run)");
  sub.add_option("--save-every", a->save_every, "steps between checkpoints (0: 10 per run)");
  sub.add_option("--keep", a->keep, "checkpoints kept")->capture_default_str();
  sub.add_option("--out", a->out, "run directory")->capture_default_str();
  sub.add_option("--resume", a->resume, "a run directory (its latest checkpoint) or one checkpoint directory");
  sub.add_option("--policy", a->policy,
                 "device policy JSON (docs/POLICY.md): train only while charging, cool down when hot");
  sub.add_option("--sensors", a->sensors,
                 "device policy sensors: sysfs (default), sysfs:ROOT (a directory standing for /sys) or "
                 "scripted:TIMELINE.json (simulated time; examples/)");
  sub.add_option("--seed", a->seed, "seed of the adapter init, data order and split")->capture_default_str();
  sub.add_flag("--json", a->json, "print only a JSON summary");
  return [a] { return run_train(*a); };
});

}  // namespace
}  // namespace pocketlora::cli
