#include "host/train/trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <fstream>

#include "host/adapters/peft_export.h"
#include "host/core/error.h"
#include "host/core/op/cross_entropy.h"
#include "host/tokenizer/tokenizer.h"
#include "host/train/base_fingerprint.h"
#include "host/train/checkpoint.h"
#include "host/train/lora_adapter.h"
#include "host/train/loss_plot.h"
#include "host/train/metrics_log.h"
#include "host/train/step_engine.h"
#include "host/util/process_memory.h"
#include "host/util/stop_request.h"

namespace pocketlora {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

bool is_gguf(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in && std::memcmp(magic, "GGUF", 4) == 0;
}

// A checkpoint's adapter tensors into `adapter` (f32), each checked by name and shape.
void load_adapter_tensors(LoraAdapter& adapter, const std::vector<std::pair<std::string, Tensor>>& tensors,
                          const fs::path& dir) {
  for (auto& m : adapter.modules)
    for (char which : {'A', 'B'}) {
      const std::string name = m.tensor_name(which);
      auto it = std::find_if(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
      Tensor& dst = which == 'A' ? m.a : m.b;
      if (it == tensors.end() || it->second.shape() != dst.shape())
        throw FormatError(fmt::format("{}: checkpoint tensor '{}' is missing or not {}", dir.string(), name,
                                      shape_str(dst.shape())));
      dst = it->second.to(DType::F32);
    }
}

}  // namespace

fs::path find_tokenizer(const fs::path& model) {
  if (fs::is_regular_file(model) && is_gguf(model)) return model;
  const fs::path dir = fs::is_directory(model) ? model : model.parent_path();
  for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer.bin"})
    if (fs::is_regular_file(dir / name)) return dir / name;
  std::vector<fs::path> found;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string n = e.path().filename().string();
      if (e.is_regular_file() && n.starts_with("tok") && n.ends_with(".bin")) found.push_back(e.path());
    }
  if (found.size() == 1) return found[0];
  throw InvalidArgument(
      fmt::format("no tokenizer found for {} (looked for the GGUF's own vocabulary, tokenizer.json / tokenizer.model / "
                  "tokenizer.bin or a single tok*.bin in {}); pass --tokenizer PATH",
                  model.string(), dir.string()));
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::F32: return "f32";
    case Precision::F16: return "f16";
    case Precision::Auto: return "auto";
  }
  return "?";
}

Precision parse_precision(const std::string& s) {
  if (s == "f32") return Precision::F32;
  if (s == "f16") return Precision::F16;
  if (s == "auto") return Precision::Auto;
  throw InvalidArgument("--precision '" + s + "': expected f32, f16 or auto");
}

const char* checkpointing_mode_name(CheckpointingMode m) {
  switch (m) {
    case CheckpointingMode::Off: return "off";
    case CheckpointingMode::On: return "on";
    case CheckpointingMode::Auto: return "auto";
  }
  return "?";
}

CheckpointingMode parse_checkpointing_mode(const std::string& s) {
  if (s == "on") return CheckpointingMode::On;
  if (s == "off") return CheckpointingMode::Off;
  if (s == "auto") return CheckpointingMode::Auto;
  throw InvalidArgument("--checkpointing '" + s + "': expected on, off or auto");
}

nlohmann::json train_config_json(const TrainOptions& o) {
  return {
      {"model", o.model.string()},
      {"quant", o.quant == BaseQuant::Nf4 ? "nf4" : "none"},
      {"embedding_dtype", table_dtype_name(o.embedding_dtype)},
      {"precision", precision_name(o.precision)},
      {"lora", lora_config_json(o.lora)},
      {"optimizer",
       {{"kind", optimizer_name(o.optimizer.kind)},
        {"lr", o.optimizer.lr},
        {"beta1", o.optimizer.beta1},
        {"beta2", o.optimizer.beta2},
        {"eps", o.optimizer.eps},
        {"weight_decay", o.optimizer.weight_decay},
        {"max_grad_norm", o.optimizer.max_grad_norm}}},
      {"schedule", {{"kind", lr_schedule_name(o.schedule)}, {"warmup", o.warmup_steps}}},
      {"data",
       {{"path", o.data.path.string()},
        {"seq_len", o.data.seq_len},
        {"validation_fraction", o.data.validation_fraction},
        {"pack", o.data.pack ? nlohmann::json(*o.data.pack) : nlohmann::json()}}},
      {"batch", o.batch},
      {"grad_accum", o.grad_accum},
      {"seed", o.seed},
  };
}

struct Trainer::State {
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<TrainData> data;
  LlamaModel model;
  std::string fingerprint;
  LoraAdapter adapter;
  std::optional<Checkpoint> resume;
  fs::path resume_dir;
  std::unique_ptr<Backend> be;
  bool backend_made_here = false;  // the trainer may release it at a policy pause and make it again
  nlohmann::json config;
};

Trainer::Trainer(TrainOptions options, std::unique_ptr<Backend> backend)
    : opt_(std::move(options)), s_(std::make_unique<State>()) {
  // Options first: cheap, and a typo should not wait for a model load.
  opt_.lora.validate();
  if (opt_.batch < 1) throw InvalidArgument(fmt::format("--batch must be at least 1, got {}", opt_.batch));
  if (opt_.grad_accum < 1)
    throw InvalidArgument(fmt::format("--grad-accum must be at least 1, got {}", opt_.grad_accum));
  if (opt_.steps < 0 || opt_.epochs < 1)
    throw InvalidArgument(
        fmt::format("--steps {} / --epochs {}: give steps >= 1, or epochs >= 1", opt_.steps, opt_.epochs));
  if (!(opt_.optimizer.lr > 0) || !std::isfinite(opt_.optimizer.lr))
    throw InvalidArgument(fmt::format("--lr must be a positive number, got {}", opt_.optimizer.lr));
  if (opt_.warmup_steps < 0) throw InvalidArgument(fmt::format("--warmup must be >= 0, got {}", opt_.warmup_steps));
  if (opt_.out.empty()) throw InvalidArgument("--out: the run directory is required");
  if (!fs::exists(opt_.model)) throw IoError(fmt::format("{}: model not found", opt_.model.string()));

  // Then the model (an unsupported architecture is named before its tokenizer is looked for) and the data.
  // Deferred: each base linear is converted when the engine uploads it, so the host never holds the base in full.
  std::optional<LlamaModel> shared = opt_.open_model ? with_base_quant(*opt_.open_model, opt_.quant) : std::nullopt;
  s_->model = shared ? std::move(*shared) : load_llama_model(opt_.model, opt_.quant, BaseLoad::Deferred);
  s_->tok = load_tokenizer(opt_.tokenizer.empty() ? find_tokenizer(opt_.model) : opt_.tokenizer);
  const LlamaConfig& c = s_->model.config;
  s_->data = std::make_unique<TrainData>(*s_->tok, opt_.data, c.max_seq_len, c.vocab_size);
  const std::int64_t windows_per_step = opt_.batch * opt_.grad_accum;
  const std::int64_t steps_per_epoch = (s_->data->stats().train_windows + windows_per_step - 1) / windows_per_step;
  total_steps_ = opt_.steps > 0 ? opt_.steps : steps_per_epoch * opt_.epochs;
  s_->fingerprint = base_model_fingerprint(opt_.model, opt_.quant == BaseQuant::Nf4 ? "nf4" : "none");
  // The backend decides what Auto means and how the step's memory is laid out; it is made here (not lazily in
  // run()) so the plan and the checkpoint config see the precision and the device the run will use.
  s_->backend_made_here = !backend;
  if (!backend) backend = make_backend(opt_.backend, opt_.device);
  if (opt_.precision == Precision::Auto)
    opt_.precision = backend->prefers_f16_activations() ? Precision::F16 : Precision::F32;
  s_->config = train_config_json(opt_);

  s_->adapter = init_lora_adapter(c, s_->model.rope_layout, opt_.lora, opt_.seed);
  if (opt_.resume) {
    s_->resume_dir = resolve_resume(*opt_.resume);
    CheckpointExpectation want{
        s_->fingerprint,
        s_->config,
        {"/lora", "/quant", "/precision", "/optimizer/kind", "/data", "/batch", "/grad_accum", "/seed"}};
    s_->resume = load_checkpoint(s_->resume_dir, want);
    load_adapter_tensors(s_->adapter, s_->resume->adapter, s_->resume_dir);
  }
  if (opt_.policy) {
    if (!opt_.policy->sensors || !opt_.policy->clock)
      throw InvalidArgument("the device policy needs a sensor source and a clock");
    opt_.policy->config.validate();
  }
  s_->be = std::move(backend);
  plan_ = make_plan();
}

Trainer::~Trainer() = default;

const TrainData& Trainer::data() const { return *s_->data; }
std::int64_t Trainer::start_step() const { return s_->resume ? s_->resume->step : 0; }

MemoryReport Trainer::make_plan() const {
  // Checkpointing costs about one more forward per step, a smaller micro-batch only GEMM efficiency: without it
  // first at each micro-batch, then with it (Auto), then the next smaller micro-batch.
  std::vector<bool> modes;
  if (opt_.checkpointing != CheckpointingMode::On) modes.push_back(false);
  if (opt_.checkpointing != CheckpointingMode::Off) modes.push_back(true);
  // The limit: --max-memory, or the device's budget where that is smaller (a phone's GPU heap is shared with the
  // OS, which kills an app that takes it all).
  std::optional<std::uint64_t> limit;
  std::string limit_source;
  if (opt_.max_memory > 0) {
    limit = opt_.max_memory;
    limit_source = "--max-memory";
  }
  if (const auto budget = s_->be->memory_budget(); budget && (!limit || budget->bytes < *limit)) {
    limit = budget->bytes;
    limit_source = std::string(backend_kind_name(s_->be->kind())) + " memory budget (" + budget->source + ")";
  }
  MemoryReport best;
  for (std::int64_t micro = opt_.batch; micro >= 1; micro = micro == 1 ? 0 : (micro + 1) / 2)
    for (const bool ckpt : modes) {
      const StepMemoryPlan p = plan_step_memory(s_->model, s_->adapter, engine_options(micro, ckpt), *s_->be);
      MemoryReport r;
      r.resident_bytes = p.resident_bytes;
      r.step_arena_bytes = p.step_arena_bytes;
      r.step_unplanned_bytes = p.step_unplanned_bytes;
      r.op_scratch_bytes = p.op_scratch_bytes;
      r.planned_peak_bytes = p.peak_bytes();
      r.micro_batch = micro;
      r.grad_accum = opt_.grad_accum * ((opt_.batch + micro - 1) / micro);
      r.checkpointing = ckpt;
      r.limit_bytes = limit.value_or(0);
      r.limit_source = limit_source;
      if (!limit || r.planned_peak_bytes <= *limit) return r;
      best = r;
    }
  // Refused before anything is allocated: the plan is made on shapes alone.
  throw OutOfMemoryError(fmt::format(
      "{}: {} bytes allowed, the smallest step (micro-batch 1 x {} tokens, checkpointing {}) is planned at {} bytes "
      "({} resident: base, adapter, gradients, optimizer state; {} of step temporaries; {} of op scratch)",
      limit_source, *limit, opt_.data.seq_len, best.checkpointing ? "on" : "off", best.planned_peak_bytes,
      best.resident_bytes, best.step_arena_bytes, best.op_scratch_bytes));
}

StepEngineOptions Trainer::engine_options(std::int64_t micro, bool checkpointing) const {
  StepEngineOptions o;
  o.micro_batch = micro;
  o.seq_len = opt_.data.seq_len;
  o.packed = s_->data->stats().packed;
  o.optimizer = opt_.optimizer;
  o.dropout_seed = opt_.seed;
  o.checkpointing = checkpointing;
  o.table_dtype = opt_.embedding_dtype;
  if (opt_.precision == Precision::F16) o.activations = DType::F16;
  return o;
}

TrainSummary Trainer::run(const std::function<void(const StepReport&)>& on_step,
                          const std::function<void(const PolicyTransition&)>& on_policy) {
  State& s = *s_;
  const TrainData& data = *s.data;
  const LlamaModel& model = s.model;
  TrainSummary sum;
  sum.total_steps = total_steps_;
  sum.memory = plan_;
  std::int64_t micro = sum.memory.micro_batch, accum = sum.memory.grad_accum;  // re-planned after a pause
  const std::int64_t S = opt_.data.seq_len;

  fs::create_directories(opt_.out);
  // Built before the first step and, under a device policy, released at a pause and rebuilt after it.
  std::optional<TrainStepEngine> engine;
  std::int64_t start = 0;
  DataPosition pos;
  if (s.resume) {
    start = s.resume->step;
    pos = s.resume->data;
  }
  std::int64_t done = start, saved_at = start;

  const LrSchedule schedule(opt_.schedule, opt_.optimizer.lr, opt_.warmup_steps, total_steps_);
  MetricsLog metrics(opt_.out / "metrics.jsonl", s.resume ? s.resume->step : -1);
  sum.metrics = metrics.path();
  const std::int64_t eval_every = opt_.eval_every > 0 ? opt_.eval_every : std::max<std::int64_t>(1, total_steps_ / 10);
  const std::int64_t save_every = opt_.save_every > 0 ? opt_.save_every : std::max<std::int64_t>(1, total_steps_ / 10);

  auto validation_loss = [&] { return engine->loss(data.validation(), data.pad_id()); };
  auto save = [&](std::int64_t at_step) {
    Checkpoint ck;
    ck.step = at_step;
    ck.data = pos;
    ck.rng_state = {opt_.seed};
    ck.base_fingerprint = s.fingerprint;
    ck.config = s.config;
    PeftAdapter peft;
    peft.config = {opt_.lora.rank, opt_.lora.alpha, opt_.lora.dropout, opt_.lora.rslora, {}, opt_.model.string()};
    for (LoraTarget tg : opt_.lora.targets) peft.config.targets.push_back(lora_target_name(tg));
    ck.adapter = engine->adapter_tensors();
    ck.optimizer = engine->optimizer_tensors();
    peft.tensors = ck.adapter;
    sum.checkpoint = save_checkpoint(opt_.out, ck, opt_.keep_checkpoints);
    write_peft_adapter(opt_.out, peft, model.config, model.rope_layout);
    sum.adapter_dir = opt_.out;
    const auto records = read_metrics_log(metrics.path());
    sum.plot = opt_.out / "loss.svg";
    write_loss_plot(sum.plot, loss_curves(records), "LoRA fine-tune of " + opt_.model.filename().string());
    saved_at = at_step;
  };
  // A backend made again after a pause: the device's budget is asked again (a phone's shrinks while other apps
  // run) and the step planned for it as at the start — a smaller micro-batch or checkpointing if it shrank, an
  // OutOfMemoryError (the pause's checkpoint on disk) if nothing fits any more. A changed plan is logged.
  auto replan = [&] {
    MemoryReport p;
    try {
      p = make_plan();
    } catch (const OutOfMemoryError& e) {
      throw OutOfMemoryError(fmt::format("resuming after a pause at step {}: {}{}", done, e.what(),
                                         sum.checkpoint.empty() ? std::string()
                                                                : "; the run resumes from " + sum.checkpoint.string() +
                                                                      " once the memory is there"));
    }
    if (p.micro_batch == micro && p.checkpointing == sum.memory.checkpointing &&
        p.limit_bytes == sum.memory.limit_bytes)
      return;
    p.measured_device_bytes = sum.memory.measured_device_bytes;
    sum.memory = p;
    micro = p.micro_batch;
    accum = p.grad_accum;
    metrics.append_event({{"event", "memory_plan"},
                          {"step", done},
                          {"limit_bytes", p.limit_bytes},
                          {"limit_source", p.limit_source},
                          {"micro_batch", p.micro_batch},
                          {"grad_accum", p.grad_accum},
                          {"checkpointing", p.checkpointing},
                          {"planned_peak_bytes", p.planned_peak_bytes}});
  };
  // The exact resume path, in-process: after a pause the engine starts from the checkpoint written at it.
  auto build_engine = [&] {
    std::optional<Checkpoint> paused_at;
    if (done > start) {
      paused_at = read_checkpoint_dir(sum.checkpoint);
      load_adapter_tensors(s.adapter, paused_at->adapter, sum.checkpoint);
    }
    if (!s.be) {
      s.be = make_backend(opt_.backend, opt_.device);
      replan();
    }
    engine.emplace(*s.be, model, s.adapter, engine_options(micro, sum.memory.checkpointing));
    if (paused_at) engine->load_optimizer_tensors(paused_at->optimizer, sum.checkpoint.string());
    else if (s.resume) engine->load_optimizer_tensors(s.resume->optimizer, s.resume_dir.string());
    // The plan the engine applied, for this backend's alignment and blocks (the constructor's plan chose the batch).
    sum.memory.step_arena_bytes = engine->memory_plan().step_arena_bytes;
    sum.memory.op_scratch_bytes = engine->memory_plan().op_scratch_bytes;
    sum.memory.planned_peak_bytes = engine->memory_plan().peak_bytes();
    sum.memory.measured_device_bytes = std::max(sum.memory.measured_device_bytes, s.be->memory_in_use());
    if (!s.resume && done == 0 && !sum.first_val_loss) sum.first_val_loss = validation_loss();  // the base model's
  };

  // The device policy: every transition goes to the metrics log and to on_policy.
  std::optional<DevicePolicy> policy;
  if (opt_.policy) policy.emplace(opt_.policy->config);
  auto log_transition = [&](const PolicyTransition& t) {
    metrics.append_event({{"event", "policy"},
                          {"step", done},
                          {"time_s", t.time_s},
                          {"from", t.from},
                          {"to", t.to},
                          {"reason", t.reason},
                          {"readings", readings_json(t.readings)}});
    if (on_policy) on_policy(t);
  };
  std::string policy_status;
  double last_step_s = 0;
  TrainControl* ctl = opt_.control.get();
  // A pause asked through the control: what a policy pause does (checkpoint, release, wait), then the run loop asks
  // the policy again. False when the run is to stop.
  auto pause_for_control = [&]() -> bool {
    if (engine && saved_at != done) save(done);
    if (s.backend_made_here) {
      engine.reset();
      s.be.reset();
    }
    if (ctl->on_pause_change) ctl->on_pause_change(true);
    const bool go_on = ctl->wait_while_paused();
    if (ctl->on_pause_change) ctl->on_pause_change(false);
    if (!go_on) sum.interrupted = true;
    return go_on;
  };
  // Asks the policy until it allows a step; false when the run must end first (Ctrl-C, or sensors that ended).
  auto wait_for_policy = [&]() -> bool {
    SensorSource& sensors = *opt_.policy->sensors;
    PolicyClock& clock = *opt_.policy->clock;
    for (;;) {
      const SensorReadings r = sensors.read();
      const PolicyDecision d = policy->decide(r, clock.now_s(), last_step_s);
      if (d.transition) log_transition(*d.transition);
      const std::optional<double> temp = policy->temperature_c(r);
      policy_status = policy->state_name() + (temp ? fmt::format(" {:.1f} °C", *temp) : std::string(" ? °C"));
      if (d.action == PolicyAction::Train) return true;
      if (d.action == PolicyAction::Throttle) {
        clock.wait_s(d.idle_s);
        return true;
      }
      if (engine && saved_at != done) save(done);  // pause: the step's state to disk
      // ...and its memory back to the device. Weights live as long as their backend, so the engine goes with the
      // backend the trainer made (both made again on resume); with a backend passed in, both stay: a new engine
      // would upload the weights a second time.
      if (s.backend_made_here) {
        engine.reset();
        s.be.reset();
      }
      if (stop_requested() || (ctl && ctl->stop_requested())) {
        sum.interrupted = true;
        return false;
      }
      if (ctl && ctl->pause_requested()) return true;  // the run loop takes the pause (and asks again after it)
      if (sensors.ended()) {
        sum.policy_stop = fmt::format("the sensor source ({}) ended while the policy was {}: {}; {} of {} steps done",
                                      sensors.describe(), policy->state_name(), policy->reason(), done, total_steps_);
        log_transition(policy->fail(sum.policy_stop, clock.now_s(), r));
        return false;
      }
      clock.wait_s(policy->config().poll_seconds);
    }
  };

  // A run that throws (NaN steps, a device lost, a full disk) ends the policy in Failed, logged best effort on the
  // way out; the error itself goes on to the caller.
  struct FailOnUnwind {
    std::function<void()> log;
    int uncaught = std::uncaught_exceptions();
    ~FailOnUnwind() {
      if (std::uncaught_exceptions() <= uncaught) return;
      try {
        log();
      } catch (...) {  // the error being thrown matters more than its log line
      }
    }
  } fail_on_unwind{[&] {
    if (policy && policy->state() != PolicyState::Done && policy->state() != PolicyState::Failed)
      log_transition(policy->fail(fmt::format("the run stopped on an error after {} of {} steps", done, total_steps_),
                                  opt_.policy->clock->now_s(), opt_.policy->sensors->read()));
  }};
  std::optional<StopRequestScope> stop_scope;
  if (!ctl) {
    stop_scope.emplace();
    clear_stop_request();
  }
  std::vector<std::size_t> order = data.epoch_order(pos.epoch);
  int consecutive_skips = 0;
  if (!policy) build_engine();
  // Resumed from the run's final checkpoint: a kill after that checkpoint but before the adapter and plot written
  // beside it leaves them a step behind, and no step is left to rewrite them, so the last save is done again.
  if (s.resume && done == total_steps_ && done > 0) {
    if (!engine) build_engine();
    save(done);
  }
  const auto t_run = Clock::now();
  for (; done < total_steps_;) {
    if (policy && !wait_for_policy()) break;
    if (ctl && ctl->stop_requested()) {
      if (engine && saved_at != done) save(done);
      sum.interrupted = true;
      break;
    }
    if (ctl && ctl->pause_requested()) {
      if (!pause_for_control()) break;
      continue;
    }
    if (!engine) build_engine();
    const auto t0 = Clock::now();
    // This step's micro-batches, from the data position; the loss scale covers all of them.
    std::vector<TokenBatch> batches;
    for (std::int64_t a = 0; a < accum; ++a) {
      std::vector<std::size_t> which;
      while (static_cast<std::int64_t>(which.size()) < micro) {
        if (pos.index >= static_cast<std::int64_t>(order.size())) {
          ++pos.epoch;
          pos.index = 0;
          order = data.epoch_order(pos.epoch);
        }
        which.push_back(order[static_cast<std::size_t>(pos.index++)]);
      }
      batches.push_back(make_token_batch(data.train(), which, micro, S, data.pad_id()));
    }
    const double lr = schedule.lr(done);
    const StepResult res = engine->step(batches, lr, done + 1);
    const GradStats& gs = res.stats;
    const double loss = res.loss;
    ++done;
    const bool skipped = gs.skip || !std::isfinite(loss);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    StepReport rep;
    rep.step = done;
    rep.total = total_steps_;
    rep.loss = loss;
    rep.lr = lr;
    rep.grad_norm = gs.norm;
    rep.skipped = skipped;
    rep.tokens_per_s = static_cast<double>(micro * S * accum) / seconds;
    rep.memory_bytes = s.be->memory_in_use();
    if (policy) last_step_s = opt_.policy->clock->step_done(seconds);
    rep.policy_status = policy_status;
    sum.memory.measured_device_bytes = std::max(sum.memory.measured_device_bytes, rep.memory_bytes);
    sum.tokens += micro * S * accum;
    if (skipped) {
      ++sum.skipped;
      if (++consecutive_skips > opt_.max_consecutive_skips)
        throw NumericError(fmt::format(
            "step {}: {} steps in a row had a NaN/Inf loss or gradient (first bad gradient: tensor #{}); stopped. "
            "The last good checkpoint is {}",
            done, consecutive_skips, gs.first_bad, sum.checkpoint.empty() ? "(none yet)" : sum.checkpoint.string()));
    } else {
      consecutive_skips = 0;
      if (!sum.first_loss) sum.first_loss = loss;
      sum.last_loss = loss;
    }
    if (done % eval_every == 0 || done == total_steps_) {
      rep.val_loss = validation_loss();
      if (rep.val_loss) {
        if (!sum.first_val_loss) sum.first_val_loss = rep.val_loss;
        sum.last_val_loss = rep.val_loss;
      }
    }
    StepMetrics sm;
    sm.step = done;
    sm.loss = skipped ? std::numeric_limits<double>::quiet_NaN() : loss;
    sm.lr = lr;
    sm.grad_norm = gs.norm;
    sm.tokens_per_s = rep.tokens_per_s;
    sm.memory_bytes = rep.memory_bytes;
    sm.skipped = skipped;
    sm.val_loss = rep.val_loss;
    metrics.append(sm);
    if (on_step) on_step(rep);
    const bool stop = stop_requested() || (ctl && ctl->stop_requested());
    if (stop || done % save_every == 0 || done == total_steps_) save(done);
    if (stop) {
      sum.interrupted = true;
      break;
    }
  }
  if (policy && done == total_steps_)
    log_transition(policy->finish(fmt::format("all {} steps done", total_steps_), opt_.policy->clock->now_s(),
                                  opt_.policy->sensors->read()));
  sum.steps_done = done;
  sum.seconds = std::chrono::duration<double>(Clock::now() - t_run).count();
  sum.tokens_per_s = sum.seconds > 0 ? static_cast<double>(sum.tokens) / sum.seconds : 0;
  sum.peak_rss_bytes = peak_rss_bytes();
  return sum;
}

}  // namespace pocketlora
