#include "host/train/trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>

#include "host/adapters/peft_export.h"
#include "host/core/error.h"
#include "host/core/op/cross_entropy.h"
#include "host/tokenizer/tokenizer.h"
#include "host/train/base_fingerprint.h"
#include "host/train/checkpoint.h"
#include "host/train/llama_lora_step.h"
#include "host/train/lora_adapter.h"
#include "host/train/loss_plot.h"
#include "host/train/metrics_log.h"
#include "host/train/planning_backend.h"
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

// The tokenizer of a model: the GGUF itself, a Hugging Face folder's tokenizer file, or a llama2.c tokenizer
// (tokenizer.bin, or the single tok*.bin) beside a .bin checkpoint.
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

std::uint64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("VmHWM:")) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

std::string module_tensor_name(const LoraModule& m, char which) { return m.name() + "." + which; }

// The tensors a step's micro-batch writes, and the loss/optimizer bookkeeping, on one backend.
struct StepTensors {
  BTensor targets, lse, totals, val_totals, scale, stats, consts;
  std::vector<BOptimizerState> opt_a, opt_b;  // per module
  std::vector<BTensor> grads;                 // dA, dB of every module, in module order
};

StepTensors alloc_step_tensors(Backend& be, const LoraAdapter& ad, const BackendLora& bl, const OptimizerConfig& cfg,
                               std::int64_t tokens) {
  StepTensors t;
  t.targets = be.alloc({tokens}, DType::I32, Lifetime::Step, "targets");
  t.lse = be.alloc({tokens}, DType::F32, Lifetime::Step, "loss lse");
  t.totals = be.alloc({2}, DType::F32, Lifetime::Weights, "loss totals");
  t.val_totals = be.alloc({2}, DType::F32, Lifetime::Weights, "validation loss totals");
  t.scale = be.alloc({1}, DType::F32, Lifetime::Weights, "loss scale");
  t.stats = be.alloc_grad_stats();
  t.consts = be.alloc_step_constants();
  for (const auto& m : ad.modules) {
    const BackendLoraModule& b = bl.at(static_cast<std::size_t>(m.layer), m.target);
    t.opt_a.push_back(be.alloc_optimizer_state(cfg, m.a.shape(), module_tensor_name(m, 'A')));
    t.opt_b.push_back(be.alloc_optimizer_state(cfg, m.b.shape(), module_tensor_name(m, 'B')));
    t.grads.push_back(b.da);
    t.grads.push_back(b.db);
  }
  return t;
}

// Rows per output-head chunk: the largest divisor of the step's tokens whose [rows, vocab] f32 logits stay under
// 16 MiB, so a 128k vocabulary never holds [tokens, vocab] at once (stories260K: one chunk).
std::int64_t head_rows(std::int64_t tokens, std::int64_t vocab) {
  const std::int64_t cap = std::max<std::int64_t>(1, (std::int64_t{16} << 20) / (vocab * 4));
  for (std::int64_t r = std::min(tokens, cap); r > 1; --r)
    if (tokens % r == 0) return r;
  return 1;
}

// The loss of one head chunk: targets and lse rows of that chunk.
struct ChunkViews {
  std::vector<BTensor> targets, lse;
};
ChunkViews chunk_views(Backend& be, const LlamaLoraStep& step, const StepTensors& t) {
  ChunkViews v;
  const std::int64_t rows = step.tokens() / step.head_chunks();
  for (std::int64_t c = 0; c < step.head_chunks(); ++c) {
    v.targets.push_back(be.view_rows(t.targets, c * rows, rows));
    v.lse.push_back(be.view_rows(t.lse, c * rows, rows));
  }
  return v;
}

// The micro-batch program: forward, per head chunk cross-entropy (loss totals +=, dlogits = scale * (softmax -
// onehot)) and the head's backward, then the body's backward accumulating dA/dB.
void record_micro(Backend& be, LlamaLoraStep& step, const StepTensors& t, const ChunkViews& v) {
  step.record_body_forward();
  for (std::int64_t c = 0; c < step.head_chunks(); ++c) {
    const auto i = static_cast<std::size_t>(c);
    step.record_head_forward(c);
    be.cross_entropy(step.logits(), v.targets[i], v.lse[i], t.totals);
    be.cross_entropy_backward(step.logits(), v.targets[i], v.lse[i], t.scale, step.dlogits());
    step.record_head_backward(c);
  }
  step.record_body_backward();
}

// The validation program: forward and the loss only.
void record_validation(Backend& be, LlamaLoraStep& step, const StepTensors& t, const ChunkViews& v) {
  step.record_body_forward();
  for (std::int64_t c = 0; c < step.head_chunks(); ++c) {
    const auto i = static_cast<std::size_t>(c);
    step.record_head_forward(c);
    be.cross_entropy(step.logits(), v.targets[i], v.lse[i], t.val_totals);
  }
}

// The update program: global norm + clip + skip flag, every A and B updated, gradients and loss totals zeroed.
void record_update(Backend& be, const LoraAdapter& ad, const BackendLora& bl, const StepTensors& t,
                   const OptimizerConfig& cfg) {
  be.grad_norm(t.grads, cfg.max_grad_norm, t.stats);
  for (std::size_t i = 0; i < ad.modules.size(); ++i) {
    const auto& m = ad.modules[i];
    const BackendLoraModule& b = bl.at(static_cast<std::size_t>(m.layer), m.target);
    be.optimizer_step(cfg, t.consts, b.a, b.da, t.opt_a[i], t.stats);
    be.optimizer_step(cfg, t.consts, b.b, b.db, t.opt_b[i], t.stats);
  }
  for (const auto& g : t.grads) be.fill(g, 0.0f);
  be.fill(t.totals, 0.0f);
}

Tensor scalar_f32(float v) {
  Tensor t = Tensor::zeros({1});
  t.data<float>()[0] = v;
  return t;
}

Tensor i32_tensor(const std::vector<std::int32_t>& v) {
  Tensor t = Tensor::zeros({static_cast<std::int64_t>(v.size())}, DType::I32);
  std::copy(v.begin(), v.end(), t.data<std::int32_t>());
  return t;
}

}  // namespace

nlohmann::json train_config_json(const TrainOptions& o) {
  std::vector<std::string> targets;
  for (LoraTarget t : o.lora.targets) targets.push_back(lora_target_name(t));
  return {
      {"model", o.model.string()},
      {"quant", o.quant == BaseQuant::Nf4 ? "nf4" : "none"},
      {"lora",
       {{"rank", o.lora.rank},
        {"alpha", o.lora.alpha},
        {"dropout", o.lora.dropout},
        {"rslora", o.lora.rslora},
        {"targets", targets}}},
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

  // Then the data (an unreadable dataset is found before the model is loaded).
  s_->tok = load_tokenizer(opt_.tokenizer.empty() ? find_tokenizer(opt_.model) : opt_.tokenizer);
  s_->model = load_llama_model(opt_.model, opt_.quant);
  const LlamaConfig& c = s_->model.config;
  s_->data = std::make_unique<TrainData>(*s_->tok, opt_.data, c.max_seq_len, c.vocab_size);
  const std::int64_t windows_per_step = opt_.batch * opt_.grad_accum;
  const std::int64_t steps_per_epoch = (s_->data->stats().train_windows + windows_per_step - 1) / windows_per_step;
  total_steps_ = opt_.steps > 0 ? opt_.steps : steps_per_epoch * opt_.epochs;
  s_->fingerprint = base_model_fingerprint(opt_.model, opt_.quant == BaseQuant::Nf4 ? "nf4" : "none");
  s_->config = train_config_json(opt_);

  s_->adapter = init_lora_adapter(c, s_->model.rope_layout, opt_.lora, opt_.seed);
  if (opt_.resume) {
    s_->resume_dir = resolve_resume(*opt_.resume);
    CheckpointExpectation want{
        s_->fingerprint, s_->config, {"/lora", "/quant", "/optimizer/kind", "/data", "/batch", "/grad_accum", "/seed"}};
    s_->resume = load_checkpoint(s_->resume_dir, want);
    for (auto& m : s_->adapter.modules)
      for (char which : {'A', 'B'}) {
        const std::string name = module_tensor_name(m, which);
        auto it = std::find_if(s_->resume->adapter.begin(), s_->resume->adapter.end(),
                               [&](const auto& p) { return p.first == name; });
        Tensor& dst = which == 'A' ? m.a : m.b;
        if (it == s_->resume->adapter.end() || it->second.shape() != dst.shape())
          throw FormatError(fmt::format("{}: checkpoint tensor '{}' is missing or not {}", s_->resume_dir.string(),
                                        name, shape_str(dst.shape())));
        dst = it->second.to(DType::F32);
      }
  }
  s_->be = std::move(backend);
}

Trainer::~Trainer() = default;

const TrainData& Trainer::data() const { return *s_->data; }
std::int64_t Trainer::start_step() const { return s_->resume ? s_->resume->step : 0; }

MemoryReport Trainer::plan_memory() const {
  MemoryReport best;
  const bool packed = s_->data->stats().packed;
  for (std::int64_t micro = opt_.batch; micro >= 1; micro = micro == 1 ? 0 : (micro + 1) / 2) {
    PlanningBackend pb;
    const BackendLlama bm = upload_llama(pb, s_->model);
    const BackendLora bl = upload_lora(pb, bm, s_->adapter);
    const std::int64_t tokens = micro * opt_.data.seq_len;
    LlamaLoraStep step(pb, bm, bl,
                       {micro, opt_.data.seq_len, packed, true, 0, head_rows(tokens, s_->model.config.vocab_size)});
    const StepTensors t = alloc_step_tensors(pb, s_->adapter, bl, opt_.optimizer, step.tokens());
    const ChunkViews v = chunk_views(pb, step, t);
    pb.begin();
    record_micro(pb, step, t, v);
    pb.end();
    pb.begin();
    record_update(pb, s_->adapter, bl, t, opt_.optimizer);
    pb.end();
    const MemoryPlan plan = pb.step_plan();
    MemoryReport r;
    r.resident_bytes = pb.resident_bytes();
    r.step_arena_bytes = plan.arena_bytes;
    r.step_unplanned_bytes = pb.step_tensor_bytes();
    r.planned_peak_bytes = r.resident_bytes + r.step_arena_bytes;
    r.micro_batch = micro;
    r.grad_accum = opt_.grad_accum * ((opt_.batch + micro - 1) / micro);
    if (opt_.max_memory == 0 || r.planned_peak_bytes <= opt_.max_memory) return r;
    best = r;
    if (micro == 1) break;
  }
  throw OutOfMemoryError(fmt::format(
      "--max-memory {} bytes: the smallest step (micro-batch 1 x {} tokens) needs {} bytes ({} resident: base, "
      "adapter, gradients, optimizer state; {} of step temporaries)",
      opt_.max_memory, opt_.data.seq_len, best.planned_peak_bytes, best.resident_bytes, best.step_arena_bytes));
}

TrainSummary Trainer::run(const std::function<void(const StepReport&)>& on_step) {
  State& s = *s_;
  const TrainData& data = *s.data;
  const LlamaModel& model = s.model;
  TrainSummary sum;
  sum.total_steps = total_steps_;
  sum.memory = plan_memory();
  const std::int64_t micro = sum.memory.micro_batch, accum = sum.memory.grad_accum;
  const std::int64_t S = opt_.data.seq_len;
  if (!s.be) s.be = make_backend(opt_.backend, opt_.device);
  Backend& be = *s.be;

  fs::create_directories(opt_.out);
  const BackendLlama bm = upload_llama(be, model);
  const BackendLora bl = upload_lora(be, bm, s.adapter);
  LlamaLoraStep step(be, bm, bl,
                     {micro, S, data.stats().packed, true, 0, head_rows(micro * S, model.config.vocab_size)});
  const StepTensors t = alloc_step_tensors(be, s.adapter, bl, opt_.optimizer, step.tokens());
  const ChunkViews views = chunk_views(be, step, t);

  std::int64_t start = 0;
  DataPosition pos;
  if (s.resume) {
    start = s.resume->step;
    pos = s.resume->data;
    for (std::size_t i = 0; i < s.adapter.modules.size(); ++i)
      for (const auto& [states, which] : {std::pair{&t.opt_a, 'A'}, std::pair{&t.opt_b, 'B'}})
        for (const auto& [suffix, tensor] : (*states)[i].tensors()) {
          const std::string name = module_tensor_name(s.adapter.modules[i], which) + "." + suffix;
          auto it = std::find_if(s.resume->optimizer.begin(), s.resume->optimizer.end(),
                                 [&](const auto& p) { return p.first == name; });
          if (it == s.resume->optimizer.end())
            throw FormatError(fmt::format("{}: checkpoint has no optimizer tensor '{}'", s.resume_dir.string(), name));
          be.write(tensor, it->second);
        }
  }

  // Programs, recorded once.
  be.begin();
  for (const auto& g : t.grads) be.fill(g, 0.0f);
  be.fill(t.totals, 0.0f);
  const Backend::Program zero = be.end();
  be.begin();
  record_micro(be, step, t, views);
  const Backend::Program micro_prog = be.end();
  be.begin();
  record_update(be, s.adapter, bl, t, opt_.optimizer);
  const Backend::Program update = be.end();
  be.begin();
  be.fill(t.val_totals, 0.0f);
  const Backend::Program val_zero = be.end();
  be.begin();
  record_validation(be, step, t, views);
  const Backend::Program val_prog = be.end();
  be.run(zero);
  sum.memory.measured_device_bytes = be.memory_in_use();

  const LrSchedule schedule(opt_.schedule, opt_.optimizer.lr, opt_.warmup_steps, total_steps_);
  MetricsLog metrics(opt_.out / "metrics.jsonl", s.resume ? s.resume->step : -1);
  sum.metrics = metrics.path();
  const std::int64_t eval_every = opt_.eval_every > 0 ? opt_.eval_every : std::max<std::int64_t>(1, total_steps_ / 10);
  const std::int64_t save_every = opt_.save_every > 0 ? opt_.save_every : std::max<std::int64_t>(1, total_steps_ / 10);

  auto write_batch = [&](const TokenBatch& b) {
    be.write(step.ids(), i32_tensor(b.ids));
    be.write(step.positions(), i32_tensor(b.positions));
    if (step.segments()) be.write(step.segments(), i32_tensor(b.segments));
    be.write(t.targets, i32_tensor(b.targets));
  };
  auto validation_loss = [&]() -> std::optional<double> {
    const auto& val = data.validation();
    if (val.empty()) return std::nullopt;
    be.run(val_zero);
    for (std::size_t i = 0; i < val.size(); i += static_cast<std::size_t>(micro)) {
      std::vector<std::size_t> which;
      for (std::size_t j = i; j < std::min(val.size(), i + static_cast<std::size_t>(micro)); ++j) which.push_back(j);
      write_batch(make_token_batch(val, which, micro, S, data.pad_id()));
      be.run(val_prog);
    }
    const Tensor tot = be.read(t.val_totals);
    const double count = tot.data<float>()[1];
    return count > 0 ? std::optional<double>(tot.data<float>()[0] / count) : std::nullopt;
  };
  auto save = [&](std::int64_t done) {
    Checkpoint ck;
    ck.step = done;
    ck.data = pos;
    ck.rng_state = {opt_.seed};
    ck.base_fingerprint = s.fingerprint;
    ck.config = s.config;
    PeftAdapter peft;
    peft.config = {opt_.lora.rank, opt_.lora.alpha, opt_.lora.dropout, opt_.lora.rslora, {}, opt_.model.string()};
    for (LoraTarget tg : opt_.lora.targets) peft.config.targets.push_back(lora_target_name(tg));
    for (std::size_t i = 0; i < s.adapter.modules.size(); ++i) {
      const auto& m = s.adapter.modules[i];
      const BackendLoraModule& b = bl.at(static_cast<std::size_t>(m.layer), m.target);
      for (const auto& [h, which, st] : {std::tuple{b.a, 'A', &t.opt_a[i]}, std::tuple{b.b, 'B', &t.opt_b[i]}}) {
        const std::string name = module_tensor_name(m, which);
        Tensor w = be.read(h).to(DType::F32);
        ck.adapter.emplace_back(name, w);
        peft.tensors.emplace_back(name, w);
        for (const auto& [suffix, tensor] : st->tensors())
          ck.optimizer.emplace_back(name + "." + suffix, be.read(tensor));
      }
    }
    sum.checkpoint = save_checkpoint(opt_.out, ck, opt_.keep_checkpoints);
    write_peft_adapter(opt_.out, peft, model.config, model.rope_layout);
    sum.adapter_dir = opt_.out;
    const auto records = read_metrics_log(metrics.path());
    sum.plot = opt_.out / "loss.svg";
    write_loss_plot(sum.plot, loss_curves(records), "LoRA fine-tune of " + opt_.model.filename().string());
  };

  StopRequestScope stop_scope;
  clear_stop_request();
  std::vector<std::size_t> order = data.epoch_order(pos.epoch);
  int consecutive_skips = 0;
  if (!s.resume) sum.first_val_loss = validation_loss();  // the base model's, before any update
  const auto t_run = Clock::now();
  std::int64_t done = start;
  for (; done < total_steps_;) {
    const auto t0 = Clock::now();
    // This step's micro-batches, from the data position; the loss scale covers all of them.
    std::vector<TokenBatch> batches;
    std::int64_t targets = 0;
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
      targets += batches.back().target_count;
    }
    const double lr = schedule.lr(done);
    be.write(t.consts, step_constants_tensor(step_constants(opt_.optimizer, static_cast<float>(lr), done + 1)));
    be.write(t.scale, scalar_f32(targets > 0 ? 1.0f / static_cast<float>(targets) : 0.0f));
    for (const auto& b : batches) {
      write_batch(b);
      be.run(micro_prog);
    }
    const Tensor tot = be.read(t.totals);
    be.run(update);
    const GradStats gs = be.read_grad_stats(t.stats);
    ++done;
    const double loss = tot.data<float>()[1] > 0 ? tot.data<float>()[0] / tot.data<float>()[1] : 0.0;
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
    rep.memory_bytes = be.memory_in_use();
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
    const bool stop = stop_requested();
    if (stop || done % save_every == 0 || done == total_steps_) save(done);
    if (stop) {
      sum.interrupted = true;
      break;
    }
  }
  sum.steps_done = done;
  sum.seconds = std::chrono::duration<double>(Clock::now() - t_run).count();
  sum.tokens_per_s = sum.seconds > 0 ? static_cast<double>(sum.tokens) / sum.seconds : 0;
  sum.peak_rss_bytes = peak_rss_bytes();
  if (sum.checkpoint.empty() && done > start) save(done);
  return sum;
}

}  // namespace pocketlora
