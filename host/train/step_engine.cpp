#include "host/train/step_engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "host/core/error.h"
#include "host/train/llama_lora_step.h"
#include "host/train/planning_backend.h"

namespace pocketlora {

namespace {

Tensor i32_tensor(const std::vector<std::int32_t>& v) {
  Tensor t = Tensor::zeros({static_cast<std::int64_t>(v.size())}, DType::I32);
  std::copy(v.begin(), v.end(), t.data<std::int32_t>());
  return t;
}

Tensor scalar_f32(float v) {
  Tensor t = Tensor::zeros({1});
  t.data<float>()[0] = v;
  return t;
}

// Everything one step needs on a backend besides the model: the step's activations (LlamaLoraStep), the loss and
// optimizer tensors, the per-chunk views. Built identically on a PlanningBackend (for the memory plan) and on the
// real backend.
struct StepGraph {
  BackendLlama model;
  BackendLora lora;
  std::unique_ptr<LlamaLoraStep> step;
  BTensor targets, lse, totals, val_totals, scale, stats, consts;
  std::vector<BOptimizerState> opt_a, opt_b;  // per adapter module
  std::vector<BTensor> grads;                 // dA, dB of every module, in module order
  std::vector<BTensor> chunk_targets, chunk_lse;

  StepGraph(Backend& be, const LlamaModel& m, const LoraAdapter& ad, const StepEngineOptions& o) {
    model = upload_llama(be, m, resolve_table_dtype(o.table_dtype, m));
    lora = upload_lora(be, model, ad);
    const std::int64_t tokens = o.micro_batch * o.seq_len;
    LoraStepOptions so;
    so.batch = o.micro_batch;
    so.seq_len = o.seq_len;
    so.segments = o.packed;
    so.accumulate_grads = true;
    so.dropout_seed = o.dropout_seed;
    so.logits_rows = head_chunk_rows(tokens, m.config.vocab_size);
    so.checkpointing = o.checkpointing;
    so.activations = o.activations;
    step = std::make_unique<LlamaLoraStep>(be, model, lora, so);
    targets = be.alloc({tokens}, DType::I32, Lifetime::Step, "targets");
    lse = be.alloc({tokens}, DType::F32, Lifetime::Step, "loss lse");
    totals = be.alloc({2}, DType::F32, Lifetime::Weights, "loss totals");
    val_totals = be.alloc({2}, DType::F32, Lifetime::Weights, "validation loss totals");
    scale = be.alloc({1}, DType::F32, Lifetime::Weights, "loss scale");
    stats = be.alloc_grad_stats();
    consts = be.alloc_step_constants();
    for (const auto& mod : ad.modules) {
      const BackendLoraModule& b = lora.at(static_cast<std::size_t>(mod.layer), mod.target);
      opt_a.push_back(be.alloc_optimizer_state(o.optimizer, mod.a.shape(), mod.tensor_name('A')));
      opt_b.push_back(be.alloc_optimizer_state(o.optimizer, mod.b.shape(), mod.tensor_name('B')));
      grads.push_back(b.da);
      grads.push_back(b.db);
    }
    const std::int64_t rows = tokens / step->head_chunks();
    for (std::int64_t c = 0; c < step->head_chunks(); ++c) {
      chunk_targets.push_back(be.view_rows(targets, c * rows, rows));
      chunk_lse.push_back(be.view_rows(lse, c * rows, rows));
    }
  }

  void record_micro(Backend& be) {
    step->record_body_forward();
    for (std::int64_t c = 0; c < step->head_chunks(); ++c) {
      const auto i = static_cast<std::size_t>(c);
      step->record_head_forward(c);
      be.cross_entropy(step->logits(), chunk_targets[i], chunk_lse[i], totals);
      be.cross_entropy_backward(step->logits(), chunk_targets[i], chunk_lse[i], scale, step->dlogits());
      step->record_head_backward(c);
    }
    step->record_body_backward();
  }

  void record_update(Backend& be, const LoraAdapter& ad, const OptimizerConfig& cfg) {
    if (grads.empty()) return;  // an adapter with no module (evaluating the base alone): nothing to update
    be.grad_norm(grads, cfg.max_grad_norm, stats);
    for (std::size_t i = 0; i < ad.modules.size(); ++i) {
      const auto& mod = ad.modules[i];
      const BackendLoraModule& b = lora.at(static_cast<std::size_t>(mod.layer), mod.target);
      be.optimizer_step(cfg, consts, b.a, b.da, opt_a[i], stats);
      be.optimizer_step(cfg, consts, b.b, b.db, opt_b[i], stats);
    }
    for (const auto& g : grads) be.fill(g, 0.0f);
    be.fill(totals, 0.0f);
  }

  // What the host writes between runs (and the rope table, written once): kept for the whole step by the plan.
  std::vector<BTensor> host_inputs() const {
    std::vector<BTensor> in{step->ids(), step->positions(), step->dropout_key(), targets};
    if (step->segments()) in.push_back(step->segments());
    return in;
  }

  // Evaluation of head chunk c alone, from the tokens (the body's activations carry no value between programs).
  void record_score(Backend& be, std::int64_t c) {
    step->record_body_forward(/*dropout=*/false);
    step->record_head_forward(c);
    const auto i = static_cast<std::size_t>(c);
    be.cross_entropy(step->logits(), chunk_targets[i], chunk_lse[i], val_totals);
  }

  void record_eval(Backend& be) {
    step->record_body_forward(/*dropout=*/false);
    for (std::int64_t c = 0; c < step->head_chunks(); ++c) {
      const auto i = static_cast<std::size_t>(c);
      step->record_head_forward(c);
      be.cross_entropy(step->logits(), chunk_targets[i], chunk_lse[i], val_totals);
    }
  }
};

}  // namespace

TableDtype parse_table_dtype(const std::string& s) {
  if (s == "auto") return TableDtype::Auto;
  if (s == "f32") return TableDtype::F32;
  if (s == "f16") return TableDtype::F16;
  throw InvalidArgument("embedding dtype '" + s + "': expected f32, f16 or auto");
}

const char* table_dtype_name(TableDtype d) {
  switch (d) {
    case TableDtype::Auto: return "auto";
    case TableDtype::F32: return "f32";
    case TableDtype::F16: return "f16";
  }
  return "?";
}

std::optional<DType> resolve_table_dtype(TableDtype d, const LlamaModel& m) {
  if (m.tok_embeddings.dtype() != DType::F32) return std::nullopt;
  if (d == TableDtype::F32) return DType::F32;
  if (d == TableDtype::F16) return DType::F16;
  const bool tied = m.output.same_as(m.tok_embeddings);
  const std::uint64_t bytes = m.tok_embeddings.nbytes() + (tied ? 0 : m.output.nbytes());
  return bytes > kF16TableBytes ? DType::F16 : DType::F32;
}

std::int64_t head_chunk_rows(std::int64_t tokens, std::int64_t vocab) {
  const std::int64_t row_bytes = std::max<std::int64_t>(1, vocab) * 4;
  if (tokens * row_bytes <= (std::int64_t{32} << 20)) return tokens;  // one chunk
  // Several chunks: each starts at a multiple of 64 rows, so the views of the i32 targets and f32 lse (4 bytes a
  // row) start on a 256-byte boundary, the largest minStorageBufferOffsetAlignment devices require.
  for (std::int64_t r = (std::int64_t{32} << 20) / row_bytes / 64 * 64; r >= 64; r -= 64)
    if (tokens % r == 0) return r;
  return tokens;  // no aligned divisor: one chunk (the backend says so if it cannot bind it)
}

namespace {
struct StepPrograms {
  Backend::Program zero = 0, micro = 0, update = 0, eval_zero = 0, eval = 0;
  std::vector<Backend::Program> score;  // per head chunk when token_scores and the head is chunked
};

// The engine's programs, recorded the same way on the planning backend and the real one, so the plan's lifetimes
// are the replayed step's.
StepPrograms record_programs(Backend& be, StepGraph& g, const LoraAdapter& adapter, const StepEngineOptions& o) {
  const OptimizerConfig& cfg = o.optimizer;
  StepPrograms p;
  be.begin();
  for (const auto& t : g.grads) be.fill(t, 0.0f);
  be.fill(g.totals, 0.0f);
  p.zero = be.end();
  be.begin();
  g.record_micro(be);
  p.micro = be.end();
  be.begin();
  g.record_update(be, adapter, cfg);
  p.update = be.end();
  be.begin();
  be.fill(g.val_totals, 0.0f);
  p.eval_zero = be.end();
  be.begin();
  g.record_eval(be);
  p.eval = be.end();
  if (o.token_scores && g.step->head_chunks() > 1)
    for (std::int64_t c = 0; c < g.step->head_chunks(); ++c) {
      be.begin();
      g.record_score(be, c);
      p.score.push_back(be.end());
    }
  return p;
}

Backend& reserved(Backend& be, const StepMemoryPlan& plan, bool apply) {
  if (apply) be.reserve_step(plan.layout);
  return be;
}
}  // namespace

namespace {

StepMemoryPlan plan_on(PlanningBackend& pb, const LlamaModel& model, const LoraAdapter& adapter,
                       const StepEngineOptions& o) {
  StepGraph g(pb, model, adapter, o);
  record_programs(pb, g, adapter, o);
  for (const BTensor& t : g.host_inputs()) pb.write(t, Tensor::zeros(t.shape, t.dtype));
  if (o.token_scores) {  // token_losses reads them after the last program that writes them
    pb.read(g.lse);
    pb.read(g.step->logits());
  }
  StepMemoryPlan p;
  p.resident_bytes = pb.resident_bytes();
  p.layout = pb.step_layout();
  p.layout.resident_bytes = p.resident_bytes;
  p.step_arena_bytes = p.layout.arena_bytes;
  p.step_unplanned_bytes = pb.step_tensor_bytes();
  p.op_scratch_bytes = pb.op_scratch_bytes();
  return p;
}

}  // namespace

StepMemoryPlan plan_step_memory(const LlamaModel& model, const LoraAdapter& adapter, const StepEngineOptions& o,
                                const StepArenaLimits& limits) {
  PlanningBackend pb(limits);
  return plan_on(pb, model, adapter, o);
}

StepMemoryPlan plan_step_memory(const LlamaModel& model, const LoraAdapter& adapter, const StepEngineOptions& o,
                                const Backend& be) {
  PlanningBackend pb(be.step_arena_limits(), &be);
  return plan_on(pb, model, adapter, o);
}

struct TrainStepEngine::Impl {
  const LoraAdapter& adapter;
  StepMemoryPlan plan;
  StepGraph g;
  StepPrograms programs;
  Impl(Backend& be, const LlamaModel& m, const LoraAdapter& ad, const StepEngineOptions& o)
      : adapter(ad),
        plan(plan_step_memory(m, ad, o, be)),
        g(reserved(be, plan, o.planned_arena), m, ad, o),
        programs(record_programs(be, g, ad, o)) {}
};

TrainStepEngine::TrainStepEngine(Backend& be, const LlamaModel& model, const LoraAdapter& adapter,
                                 const StepEngineOptions& o)
    : be_(be), o_(o), p_(std::make_unique<Impl>(be, model, adapter, o)) {
  be.run(p_->programs.zero);
}

const StepMemoryPlan& TrainStepEngine::memory_plan() const { return p_->plan; }

// The step's tensors, reservation and programs are the engine's: releasing them lets the next engine on this
// backend reserve its own step. A destructor must not throw; a backend that fails here has already reported.
TrainStepEngine::~TrainStepEngine() {
  try {
    be_.free_step();
  } catch (...) {
  }
}

std::int64_t TrainStepEngine::tokens_per_micro_batch() const { return o_.micro_batch * o_.seq_len; }

namespace {
void write_batch(Backend& be, const LlamaLoraStep& step, const BTensor& targets, const TokenBatch& b) {
  be.write(step.ids(), i32_tensor(b.ids));
  be.write(step.positions(), i32_tensor(b.positions));
  if (step.segments()) be.write(step.segments(), i32_tensor(b.segments));
  be.write(targets, i32_tensor(b.targets));
}
}  // namespace

StepResult TrainStepEngine::step(const std::vector<TokenBatch>& batches, double lr, std::int64_t step) {
  StepGraph& g = p_->g;
  StepResult r;
  for (const auto& b : batches) {
    if (b.batch != o_.micro_batch || b.seq_len != o_.seq_len)
      throw ShapeError(fmt::format("train step: a micro-batch of {} x {} tokens, the step was recorded for {} x {}",
                                   b.batch, b.seq_len, o_.micro_batch, o_.seq_len));
    r.targets += b.target_count;
  }
  be_.write(g.consts, step_constants_tensor(step_constants(o_.optimizer, static_cast<float>(lr), step)));
  be_.write(g.scale, scalar_f32(r.targets > 0 ? 1.0f / static_cast<float>(r.targets) : 0.0f));
  for (std::size_t m = 0; m < batches.size(); ++m) {
    write_batch(be_, *g.step, g.targets, batches[m]);
    g.step->write_dropout_key(static_cast<std::uint32_t>(step), static_cast<std::uint32_t>(m));
    be_.run(p_->programs.micro);
  }
  const Tensor tot = be_.read(g.totals);
  be_.run(p_->programs.update);
  r.stats = be_.read_grad_stats(g.stats);
  const float count = tot.data<float>()[1];
  r.loss = count > 0 ? tot.data<float>()[0] / count : 0.0;
  return r;
}

std::optional<double> TrainStepEngine::loss(const std::vector<Example>& windows, std::int32_t pad_id) {
  if (windows.empty()) return std::nullopt;
  StepGraph& g = p_->g;
  be_.run(p_->programs.eval_zero);
  const auto per = static_cast<std::size_t>(o_.micro_batch);
  for (std::size_t i = 0; i < windows.size(); i += per) {
    std::vector<std::size_t> which;
    for (std::size_t j = i; j < std::min(windows.size(), i + per); ++j) which.push_back(j);
    write_batch(be_, *g.step, g.targets, make_token_batch(windows, which, o_.micro_batch, o_.seq_len, pad_id));
    be_.run(p_->programs.eval);
  }
  const Tensor tot = be_.read(g.val_totals);
  const double count = tot.data<float>()[1];
  return count > 0 ? std::optional<double>(tot.data<float>()[0] / count) : std::nullopt;
}

std::vector<double> TrainStepEngine::token_losses(const TokenBatch& b) {
  StepGraph& g = p_->g;
  if (!o_.token_scores) throw InvalidArgument("token losses: the engine was built without token_scores");
  if (b.batch != o_.micro_batch || b.seq_len != o_.seq_len)
    throw ShapeError(fmt::format("token losses: a micro-batch of {} x {} tokens, the step was recorded for {} x {}",
                                 b.batch, b.seq_len, o_.micro_batch, o_.seq_len));
  write_batch(be_, *g.step, g.targets, b);
  const std::int64_t vocab = g.model.config.vocab_size, chunks = g.step->head_chunks();
  const std::int64_t rows = b.tokens() / chunks;
  std::vector<double> out(static_cast<std::size_t>(b.tokens()), std::numeric_limits<double>::quiet_NaN());
  // Each chunk's lse and logits are read right after the program that wrote them: the next one may reuse the bytes.
  for (std::int64_t c = 0; c < chunks; ++c) {
    be_.run(chunks == 1 ? p_->programs.eval : p_->programs.score[static_cast<std::size_t>(c)]);
    const Tensor lse = be_.read(g.chunk_lse[static_cast<std::size_t>(c)]);
    const Tensor logits = be_.read(g.step->logits());
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int32_t t = b.targets[static_cast<std::size_t>(c * rows + r)];
      if (t < 0) continue;
      out[static_cast<std::size_t>(c * rows + r)] =
          static_cast<double>(lse.data<float>()[r]) - static_cast<double>(logits.data<float>()[r * vocab + t]);
    }
  }
  return out;
}

std::vector<std::pair<std::string, Tensor>> TrainStepEngine::adapter_tensors() {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& mod : p_->adapter.modules) {
    const BackendLoraModule& b = p_->g.lora.at(static_cast<std::size_t>(mod.layer), mod.target);
    out.emplace_back(mod.tensor_name('A'), be_.read(b.a).to(DType::F32));
    out.emplace_back(mod.tensor_name('B'), be_.read(b.b).to(DType::F32));
  }
  return out;
}

std::vector<std::pair<std::string, Tensor>> TrainStepEngine::optimizer_tensors() {
  std::vector<std::pair<std::string, Tensor>> out;
  for (std::size_t i = 0; i < p_->adapter.modules.size(); ++i)
    for (const auto& [st, which] : {std::pair{&p_->g.opt_a[i], 'A'}, std::pair{&p_->g.opt_b[i], 'B'}})
      for (const auto& [suffix, t] : st->tensors())
        out.emplace_back(p_->adapter.modules[i].tensor_name(which) + "." + suffix, be_.read(t));
  return out;
}

void TrainStepEngine::load_optimizer_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                             const std::string& where) {
  for (std::size_t i = 0; i < p_->adapter.modules.size(); ++i)
    for (const auto& [st, which] : {std::pair{&p_->g.opt_a[i], 'A'}, std::pair{&p_->g.opt_b[i], 'B'}})
      for (const auto& [suffix, t] : st->tensors()) {
        const std::string name = p_->adapter.modules[i].tensor_name(which) + "." + suffix;
        auto it = std::find_if(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
        if (it == tensors.end() || it->second.shape() != t.shape)
          throw FormatError(
              fmt::format("{}: optimizer tensor '{}' is missing or not {}", where, name, shape_str(t.shape)));
        be_.write(t, it->second);
      }
}

}  // namespace pocketlora
