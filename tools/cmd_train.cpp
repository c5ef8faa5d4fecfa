// `pocketlora train --model PATH --data PATH [...]`: LoRA fine-tuning (host/train/trainer.h) with a live progress
// line, the adapter in PEFT format, checkpoints, metrics.jsonl and loss.svg in --out, and a summary at the end.
#include <fmt/format.h>

#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/train/trainer.h"
#include "tools/command_registry.h"
#include "tools/progress_bar.h"
#include "tools/train_options.h"

namespace pocketlora::cli {
namespace {

struct TrainCmdArgs : TrainArgs {
  std::string out = "pocketlora-run", resume;
  std::string policy, sensors;  // device policy file; sysfs[:ROOT] | scripted:TIMELINE.json
  bool json = false;
};

int run_train(const TrainCmdArgs& a) {
  TrainOptions o = train_options_from_args(a);
  o.out = a.out;
  if (!a.resume.empty()) o.resume = a.resume;
  o.policy = parse_train_policy(a.policy, a.sensors);

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

CommandRegistration register_cmd_train("train", "Fine-tune a LoRA adapter on a (frozen, NF4) base model", [](CLI::App& sub) -> Action {
  auto a = std::make_shared<TrainCmdArgs>();
  add_train_options(sub, *a);
  sub.add_option("--out", a->out, "run directory")->capture_default_str();
  sub.add_option("--resume", a->resume, "a run directory (its latest checkpoint) or one checkpoint directory");
  add_policy_options(sub, a->policy, a->sensors);
  sub.add_flag("--json", a->json, "print only a JSON summary");
  return [a] { return run_train(*a); };
});

}  // namespace
}  // namespace pocketlora::cli
