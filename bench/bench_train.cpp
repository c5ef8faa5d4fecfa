// `pocketlora bench train`: tokens/s of full QLoRA optimizer steps (TrainStepEngine::step: forward, chunked
// cross-entropy, backward of the LoRA weights, AdamW) on the CPU and Vulkan backends, next to PyTorch-CPU running
// the same step (bench/torch_train_baseline.py as a child process, same thread count and environment), with the
// planned and measured memory of each case (issue 10, Benchmark).
//   stories260k     the real stories260K (llama2.c file, NF4 base), batch 8 x 128, LoRA r 8 on all seven linears
//   tinyllama-1.1b  synthetic weights in TinyLlama-1.1B's shapes (bench/model_layer_shapes.h), NF4 base, 1 x 512,
//   llama-3.2-1b    r 16 on all seven linears, gradient checkpointing (PyTorch too; --no-checkpointing: neither);
//                   --layers N builds N of the model's layers for a quick run (the memory plan is also made at
//                   full depth, and the figures are labelled with the depth they ran at);
//                   --vocab N replaces the vocabulary (labelled), e.g. to fit the f32 head in one Vulkan binding;
//                   --embedding-dtype f32|f16|auto: the frozen embedding/head storage (auto: f16 for both 1B shapes)
// Every step is timed alone after warm-up steps; the table has the median. Host peak RSS (VmHWM) is reset before
// each case and each backend's run (/proc/self/clear_refs): the "(load)" row is the case's load (the model with
// deferred linears, tables and norms read), a backend's row its setup (base converted and uploaded linear by
// linear, programs recorded) and steps, starting from the loaded model's RSS. load s / setup s time the same.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_registry.h"
#include "bench/bench_util.h"
#include "bench/model_layer_shapes.h"
#include "bench/synthetic_llama.h"
#include "host/backend/backend.h"
#include "host/core/nf4_quantize.h"
#include "host/model/llama_model.h"
#include "host/ref/blas.h"
#include "host/train/lora_adapter.h"
#include "host/train/step_engine.h"
#include "host/train/train_data.h"
#include "host/util/process_memory.h"
#include "host/util/splitmix64.h"

namespace pocketlora::bench {
namespace {

constexpr double kVulkanStoriesTarget = 750;  // tokens/s on lavapipe
constexpr double kCpuStoriesTarget = 1.5;     // x PyTorch-CPU
constexpr double kCpuBigTarget = 1.0;         // x PyTorch-CPU (f32 base) on the 1B shapes
constexpr double kBigMemoryTarget = 1.5e9;    // bytes, planned and measured peak device memory

struct TrainBenchArgs {
  std::string cases = "stories260k,tinyllama-1.1b,llama-3.2-1b";
  std::string backends = "cpu,vulkan";
  int steps = 5, warmup = 2;          // stories260k
  int big_steps = 2, big_warmup = 1;  // the 1B shapes (a step of one layer takes 20-50 s on 2 busy cores)
  int layers = 1;                     // of the 1B shapes; 0: full depth
  std::int64_t vocab = 0;             // of the 1B shapes; 0: the model's
  bool checkpointing = true;          // of the 1B shapes (stories260k: off, as the PyTorch baseline runs it)
  std::string embedding_dtype = "auto";  // StepEngineOptions::table_dtype
  bool torch = true;
  std::string python = "/usr/bin/python3";
  std::string torch_script = "bench/torch_train_baseline.py";
  std::string data;
  std::string out = "bench-train.json";
};

// The same model at `depth` layers, its layers repeated from `m`'s, planned for `be`: the memory plan depends on
// shapes only.
StepMemoryPlan plan_at_depth(const LlamaModel& m, std::int64_t depth, const LoraConfig& lora,
                             const StepEngineOptions& o, const Backend& be) {
  LlamaModel deep = m;
  deep.config.n_layers = depth;
  deep.layers.clear();
  for (std::int64_t i = 0; i < depth; ++i)
    deep.layers.push_back(m.layers[static_cast<std::size_t>(i) % m.layers.size()]);
  const LoraAdapter adapter = init_lora_adapter(deep.config, deep.rope_layout, lora, 7);
  return plan_step_memory(deep, adapter, o, be);
}

nlohmann::json plan_json(const StepMemoryPlan& p) {
  return {{"resident_bytes", p.resident_bytes},
          {"step_arena_bytes", p.step_arena_bytes},
          {"step_unplanned_bytes", p.step_unplanned_bytes},
          {"op_scratch_bytes", p.op_scratch_bytes},
          {"peak_bytes", p.peak_bytes()}};
}

// Random ids in [3, vocab) in windows of seq_len, every next token a target.
std::vector<TokenBatch> random_batches(const LlamaConfig& c, std::int64_t batch, std::int64_t seq) {
  std::vector<Example> windows(static_cast<std::size_t>(batch));
  std::uint64_t state = 42;
  for (auto& w : windows) {
    for (std::int64_t t = 0; t < seq; ++t) {
      w.ids.push_back(static_cast<std::int32_t>(3 + splitmix64(state) % static_cast<std::uint64_t>(c.vocab_size - 3)));
      w.positions.push_back(static_cast<std::int32_t>(t));
    }
    w.labels = w.ids;
  }
  std::vector<std::size_t> which(windows.size());
  for (std::size_t i = 0; i < which.size(); ++i) which[i] = i;
  return {make_token_batch(windows, which, batch, seq, 0)};
}

struct StepTiming {
  double setup_s = 0;  // the engine's construction: the base converted and uploaded linear by linear, programs recorded
  std::uint64_t host_peak_rss = 0, host_rss_anon_after_setup = 0;
  double median_s = 0, first_loss = 0, last_loss = 0;
  std::vector<double> step_s;
  std::uint64_t device_bytes = 0;
  std::vector<Backend::MemoryUse> device_breakdown;  // at the end, where device_bytes goes
};

// Warm-up then timed optimizer steps on `be`; the engine (and its device memory) lives for this call only.
StepTiming time_steps(Backend& be, const LlamaModel& m, const LoraAdapter& adapter, const StepEngineOptions& o,
                      const std::vector<TokenBatch>& batches, int warmup, int steps) {
  StepTiming r;
  const auto t_setup = std::chrono::steady_clock::now();
  TrainStepEngine engine(be, m, adapter, o);
  r.setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_setup).count();
  r.host_rss_anon_after_setup = resident_set().anon_bytes;
  r.device_bytes = be.memory_in_use();
  std::int64_t n = 0;
  for (int i = 0; i < warmup + steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const StepResult res = engine.step(batches, 2e-4, ++n);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i == 0) r.first_loss = res.loss;
    r.last_loss = res.loss;
    if (i >= warmup) r.step_s.push_back(s);
  }
  r.device_bytes = std::max(r.device_bytes, be.memory_in_use());
  r.device_breakdown = be.memory_breakdown();
  r.median_s = median(r.step_s);
  r.host_peak_rss = peak_rss_bytes();
  return r;
}

// PyTorch-CPU on the same case as a child process; nullopt with `why` set when it cannot run.
// `extra` holds the script's options for a synthetic case (--layers, --vocab, --checkpointing).
std::optional<nlohmann::json> run_torch(const TrainBenchArgs& a, const std::string& model, const std::string& extra,
                                        int warmup, int steps, const std::string& data, std::string& why) {
  if (!a.torch) {
    why = "skipped (--no-torch)";
    return std::nullopt;
  }
  if (std::system((a.python + " -c 'import torch' >/dev/null 2>&1").c_str()) != 0) {
    why = "not installed (" + a.python + " cannot import torch; apt-get install python3-torch)";
    return std::nullopt;
  }
  // One step per window: the windows' times are the per-step times, of which the median is taken as here.
  std::string cmd = fmt::format("{} {} --model {} --threads {} --warmup {} --steps 1 --repeats {} --data '{}'",
                                a.python, a.torch_script, model, ref::cpu_threads(), warmup, steps, data);
  cmd += extra;
  fmt::print("  torch: {}\n", cmd);
  std::fflush(stdout);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    why = "could not start " + a.python;
    return std::nullopt;
  }
  std::string out, last;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int rc = pclose(p);
  for (std::size_t b = 0; b < out.size();) {
    const std::size_t e = out.find('\n', b);
    const std::string line = out.substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (!line.empty()) last = line;
    b = e == std::string::npos ? out.size() : e + 1;
  }
  if (rc != 0 || last.empty() || last.front() != '{') {
    why = fmt::format("failed (exit status {}; last output line: '{}')", rc, last);
    return std::nullopt;
  }
  nlohmann::json j = nlohmann::json::parse(last);
  j["median_step_s"] = median(j.at("window_s").get<std::vector<double>>());
  return j;
}

int run(TrainBenchArgs& a) {
  if (a.data.empty()) {
    const char* env = std::getenv("POCKETLORA_DATA");
    a.data = env && *env ? env : "../shared/data";
  }
  std::vector<BackendKind> backends;
  for (const auto& b : split_csv(a.backends)) backends.push_back(parse_backend_kind(b));
  fmt::print("threads {} (CPU backend and PyTorch), OPENBLAS_CORETYPE={}\n", ref::cpu_threads(),
             std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "(unset)");
  {
    std::ifstream la("/proc/loadavg");
    std::string l1;
    la >> l1;
    fmt::print("load average at start: {}\n", l1);
  }

  Table table({"case", "layers", "backend", "base", "tokens/step", "step s (median)", "tokens/s", "vs torch", "target",
               "plan MiB", "plan full MiB", "device MiB", "host peak MiB", "load s", "setup s"});
  nlohmann::json results = nlohmann::json::array();
  std::vector<std::string> notes;  // why a cell has no figure, numbered under the table
  for (const auto& name : split_csv(a.cases)) {
    const SyntheticSpec* spec = synthetic_spec(name);
    if (!spec && name != "stories260k")
      throw std::runtime_error("bench train: unknown case '" + name + "' (stories260k, tinyllama-1.1b, llama-3.2-1b)");
    const bool big = spec != nullptr;
    reset_peak_rss();
    const auto t_load = std::chrono::steady_clock::now();
    LlamaModel model;
    LoraConfig lora;
    StepEngineOptions o;
    std::int64_t depth = 0, full_depth = 0;
    std::string label = name, torch_extra;  // label: the case as the table names it
    if (big) {
      full_depth = spec->n_layers;
      depth = a.layers > 0 ? std::min<std::int64_t>(a.layers, full_depth) : full_depth;
      fmt::print("{}: building {} of {} layers (random f32 -> NF4)...\n", name, depth, full_depth);
      std::fflush(stdout);
      const std::int64_t vocab = a.vocab > 0 ? a.vocab : spec->vocab;
      if (vocab != spec->vocab) label = fmt::format("{} (vocab {})", name, vocab);
      model = synthetic_model(*spec, depth, vocab);
      o.checkpointing = a.checkpointing;
      torch_extra =
          fmt::format(" --layers {} --vocab {} --checkpointing {}", depth, vocab, o.checkpointing ? "on" : "off");
      lora.rank = 16;
      lora.alpha = 32;
      o.micro_batch = 1;
      o.seq_len = 512;
    } else {
      model = load_llama_model(std::filesystem::path(a.data) / "models/stories260K/stories260K.bin", BaseQuant::Nf4,
                               BaseLoad::Deferred);
      depth = full_depth = model.config.n_layers;
      lora.rank = 8;
      lora.alpha = 16;
      o.micro_batch = 8;
      o.seq_len = 128;
    }
    // Loading: the checkpoint opened and validated; linears, table and norms stay deferred until setup (the synthetic
    // model's norms are resident, dim floats each).
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
    const std::uint64_t host_peak_load = peak_rss_bytes();
    o.optimizer.kind = OptimizerKind::AdamW;
    o.optimizer.lr = 2e-4f;
    o.table_dtype = parse_table_dtype(a.embedding_dtype);
    const std::optional<DType> table_dtype = resolve_table_dtype(o.table_dtype, model);
    // The base column: NF4 linears, and the embedding/head storage when it is not f32.
    const std::string base = table_dtype == DType::F16 ? "nf4, f16 emb" : "nf4";
    const int warmup = big ? a.big_warmup : a.warmup, steps = big ? a.big_steps : a.steps;
    const LoraAdapter adapter = init_lora_adapter(model.config, model.rope_layout, lora, 7);
    const auto batches = random_batches(model.config, o.micro_batch, o.seq_len);
    const double tokens = static_cast<double>(o.micro_batch * o.seq_len);
    const std::string layers_str = fmt::format("{}/{}", depth, full_depth);

    std::string torch_why;
    const auto torch = run_torch(a, big ? spec->torch_name : "stories", torch_extra, warmup, steps, a.data, torch_why);
    const double torch_tps = torch ? tokens / torch->at("median_step_s").get<double>() : 0;
    nlohmann::json jcase{{"case", name},
                         {"layers", depth},
                         {"vocab", model.config.vocab_size},
                         {"full_depth_layers", full_depth},
                         {"batch", o.micro_batch},
                         {"seq_len", o.seq_len},
                         {"rank", lora.rank},
                         {"alpha", lora.alpha},
                         {"targets", "q,k,v,o,gate,up,down"},
                         {"optimizer", "AdamW"},
                         {"gradient_checkpointing", o.checkpointing},
                         {"embedding_dtype", table_dtype ? dtype_name(*table_dtype) : "as loaded"},
                         {"warmup_steps", warmup},
                         {"timed_steps", steps},
                         {"torch", torch ? *torch : nlohmann::json(torch_why)}};
    if (big) jcase["memory_target_bytes"] = kBigMemoryTarget;
    if (torch)
      table.row({label, layers_str, "torch-cpu", "f32", fmt::format("{:.0f}", tokens),
                 fmt::format("{:.3f}", torch->at("median_step_s").get<double>()), fmt::format("{:.1f}", torch_tps), "-",
                 "-", "-", "-", "-", fmt::format("{:.0f}", torch->at("peak_rss_mib").get<double>())});
    else {
      notes.push_back(fmt::format("{} on torch-cpu: {}", label, torch_why));
      table.row({label, layers_str, "torch-cpu", "f32", "-", "-",
                 fmt::format("{} ({})", torch_why.substr(0, torch_why.find(" (")), notes.size())});
    }

    nlohmann::json jruns = nlohmann::json::array();
    std::uint64_t worst_plan_full = 0;  // the largest full-depth plan of the backends that ran
    for (const BackendKind kind : backends) {
      std::unique_ptr<Backend> be;
      try {
        be = make_backend(kind);
      } catch (const std::exception& e) {
        notes.push_back(fmt::format("{} on {}: unavailable: {}", label, backend_kind_name(kind), e.what()));
        table.row({label, layers_str, backend_kind_name(kind), base, "-", "-",
                   fmt::format("unavailable ({})", notes.size())});
        jruns.push_back({{"backend", backend_kind_name(kind)}, {"unavailable", e.what()}});
        continue;
      }
      // Planned for this backend: its alignment and blocks, and the op scratch it takes (0 on the CPU).
      const StepMemoryPlan plan = plan_step_memory(model, adapter, o, *be);
      const StepMemoryPlan plan_full = depth == full_depth ? plan : plan_at_depth(model, full_depth, lora, o, *be);
      worst_plan_full = std::max(worst_plan_full, plan_full.peak_bytes());
      fmt::print("  {} on {}: {} warm-up + {} timed steps...\n", label, be->describe(), warmup, steps);
      std::fflush(stdout);
      StepTiming t;
      try {
        reset_peak_rss();  // this backend's run alone: the host model (tables) is in the RSS it starts from
        t = time_steps(*be, model, adapter, o, batches, warmup, steps);
      } catch (const std::exception& e) {  // a case the backend cannot run yet (e.g. a device limit): reported
        fmt::print("  failed: {}\n", e.what());
        notes.push_back(fmt::format("{} on {}: failed: {}", label, backend_kind_name(kind), e.what()));
        table.row({label, layers_str, backend_kind_name(kind), base, fmt::format("{:.0f}", tokens), "-",
                   fmt::format("failed ({})", notes.size())});
        jruns.push_back({{"backend", backend_kind_name(kind)}, {"device", be->describe()}, {"failed", e.what()}});
        continue;
      }
      const double tps = tokens / t.median_s;
      std::string target = "-";
      nlohmann::json jr{{"backend", backend_kind_name(kind)},
                        {"device", be->describe()},
                        {"step_s", t.step_s},
                        {"median_step_s", t.median_s},
                        {"tokens_per_s", tps},
                        {"loss_first", t.first_loss},
                        {"loss_last", t.last_loss},
                        {"plan", plan_json(plan)},
                        {"plan_full_depth", plan_json(plan_full)},
                        {"measured_device_bytes", t.device_bytes},
                        {"setup_s", t.setup_s},
                        {"host_peak_rss_bytes", t.host_peak_rss},
                        {"host_rss_anon_after_setup_bytes", t.host_rss_anon_after_setup}};
      for (const auto& u : t.device_breakdown)
        jr["measured_device_breakdown"].push_back({{"name", u.name}, {"held_bytes", u.held}, {"used_bytes", u.used}});
      if (depth < full_depth) {
        // Step time scaled by full/depth counts the embedding and head once per `depth` layers, so this is a lower
        // bound on full-depth tokens/s; measured memory scales by the plan's difference between the two depths.
        jr["full_depth_tokens_per_s_lower_bound"] = tps * static_cast<double>(depth) / static_cast<double>(full_depth);
        jr["full_depth_device_bytes_estimate"] = static_cast<double>(t.device_bytes) +
                                                 static_cast<double>(plan_full.peak_bytes()) -
                                                 static_cast<double>(plan.peak_bytes());
      }
      if (!big && kind == BackendKind::Vulkan) {
        jr["target_tokens_per_s"] = kVulkanStoriesTarget;
        jr["target_met"] = tps >= kVulkanStoriesTarget;
        target = fmt::format(">= {:.0f}/s {}", kVulkanStoriesTarget, tps >= kVulkanStoriesTarget ? "met" : "NOT met");
      }
      std::string vs = "-";
      if (torch) {
        const double ratio = tps / torch_tps;
        jr["vs_torch"] = ratio;
        vs = fmt::format("{:.2f}x", ratio);
        if (kind == BackendKind::Cpu) {
          const double want = big ? kCpuBigTarget : kCpuStoriesTarget;
          jr["target_vs_torch"] = want;
          jr["target_met"] = ratio >= want;
          target = fmt::format(">= {:.1f}x {}", want, ratio >= want ? "met" : "NOT met");
        }
      }
      if (big && kind == BackendKind::Vulkan && label == name) {  // the target is for the model's own vocabulary
        // The 1.5 GB target is device memory: the plan at full depth, and the measurement (at full depth when run so).
        const bool met = plan_full.peak_bytes() <= kBigMemoryTarget &&
                         (depth < full_depth || static_cast<double>(t.device_bytes) <= kBigMemoryTarget);
        jr["memory_target_met"] = met;
        target = fmt::format("mem <= 1.5 GB {}{}", met ? "met" : "NOT met", depth < full_depth ? " (plan)" : "");
      }
      table.row({label, layers_str, backend_kind_name(kind), base, fmt::format("{:.0f}", tokens),
                 fmt::format("{:.3f}", t.median_s), fmt::format("{:.1f}", tps), vs, target, mib(plan.peak_bytes()),
                 mib(plan_full.peak_bytes()), mib(t.device_bytes), mib(static_cast<double>(t.host_peak_rss)), "-",
                 fmt::format("{:.2f}", t.setup_s)});
      jruns.push_back(jr);
    }
    jcase["runs"] = jruns;
    // This process over the case (load and every backend's run; the torch child not included), and at load.
    jcase["host_peak_rss_bytes"] = std::max(host_peak_load, peak_rss_bytes());
    jcase["host_peak_rss_load_bytes"] = host_peak_load;
    jcase["load_s"] = load_s;
    std::string plan_verdict;                         // the plan is the backends' common figure: judged once per case
    if (big && label == name && worst_plan_full > 0) {
      const bool met = static_cast<double>(worst_plan_full) <= kBigMemoryTarget;
      jcase["plan_full_depth_memory_target_met"] = met;
      plan_verdict = fmt::format("plan <= 1.5 GB {}", met ? "met" : "NOT met");
    }
    table.row({label, layers_str, "(load)", "", "", "", "", "", plan_verdict, "", "", "", mib(static_cast<double>(host_peak_load)),
               fmt::format("{:.2f}", load_s), ""});
    results.push_back(jcase);
  }
  std::string load_end;
  {
    std::ifstream la("/proc/loadavg");
    la >> load_end;
  }
  fmt::print(
      "\nQLoRA training steps (forward + backward + AdamW), median step time after warm-up; layers = "
      "built/full depth; plan = planned peak device memory on that backend (resident + step arena + the "
      "largest op's scratch) at the depth run, plan full = at full depth; device = Backend::memory_in_use with "
      "the step's tensors at their planned offsets and the op scratch in one block of its planned size (Vulkan's "
      "weight arena grows from 1 MiB blocks to the device's block size); 1B shapes with gradient checkpointing "
      "{}\n",
      a.checkpointing ? "on" : "off");
  table.print();
  for (std::size_t i = 0; i < notes.size(); ++i) fmt::print("({}) {}\n", i + 1, notes[i]);
  fmt::print("load average at end: {}\n", load_end);
  write_json(a.out, {{"benchmark", "train"},
                     {"threads", ref::cpu_threads()},
                     {"openblas_coretype", std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : ""},
                     {"load_average_end", load_end},
                     {"results", results}});
  return 0;
}

BenchRegistration register_bench_train(
    "train",
    "QLoRA training steps/s (stories260K, 1B shapes) on the CPU and Vulkan backends vs PyTorch-CPU, memory plan",
    [](CLI::App& sub) {
      auto a = std::make_shared<TrainBenchArgs>();
      sub.add_option("--cases", a->cases, "Comma list among stories260k,tinyllama-1.1b,llama-3.2-1b")
          ->capture_default_str();
      sub.add_option("--backends", a->backends, "Comma list among cpu,vulkan")->capture_default_str();
      sub.add_option("--steps", a->steps, "Timed steps, stories260k")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      sub.add_option("--warmup", a->warmup, "Warm-up steps, stories260k")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      sub.add_option("--big-steps", a->big_steps, "Timed steps, 1B shapes")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      sub.add_option("--big-warmup", a->big_warmup, "Warm-up steps, 1B shapes")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      sub.add_option("--layers", a->layers, "Layers of the 1B shapes to build (0: full depth, 22 / 16)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      sub.add_option("--vocab", a->vocab,
                     "Vocabulary of the 1B shapes (0: the model's); 16384 keeps an f32 head in one 128 MiB binding")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      sub.add_flag("!--no-checkpointing", a->checkpointing,
                   "1B shapes without gradient checkpointing (both sides; default on)");
      sub.add_option("--embedding-dtype", a->embedding_dtype,
                     "Storage of the frozen embedding table and head: f32, f16, auto (f16 above 128 MiB of f32)")
          ->capture_default_str();
      sub.add_flag("!--no-torch", a->torch, "Do not run the PyTorch-CPU baseline");
      sub.add_option("--python", a->python, "Python with torch")->capture_default_str();
      sub.add_option("--torch-script", a->torch_script, "The PyTorch baseline script")->capture_default_str();
      sub.add_option("--data", a->data, "shared/data directory (default: $POCKETLORA_DATA, else ../shared/data)");
      sub.add_option("--out", a->out, "JSON output path")->capture_default_str();
      return [a] { return run(*a); };
    });

}  // namespace
}  // namespace pocketlora::bench
