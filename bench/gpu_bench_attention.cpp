// `pocketlora bench attention`: causal GQA attention forward and backward, both GPU variants (Simple with a
// [heads, T, T] scratch, Lean flash-style) against the CPU reference (which computes in f64: it is the
// correctness yardstick, so treat its time as a baseline, not as a tuned CPU kernel), for T in {128, 512} on
// the 1B models' head layouts. FLOPs counted for the causal half: fwd 2·T²·H·d, bwd 2.5× that.
#include <algorithm>
#include <chrono>
#include <sstream>

#include <fmt/format.h>

#include "bench/bench_registry.h"
#include "bench/bench_util.h"
#include "bench/gpu_roofline.h"
#include "host/core/error.h"
#include "host/ops/attention.h"
#include "host/ref/attention.h"
#include "runtime/command.h"

namespace pocketlora::bench {
namespace {

struct AttnArgs {
  std::string ts = "128,512";
  std::string models = "tinyllama-1.1b,llama-3.2-1b";
  int reps = 2;
  bool cpu = true;
  std::string out = "bench-attention.json";
};

AttentionDims dims_for(const std::string& model, std::int64_t T) {
  if (model == "tinyllama-1.1b") return {T, 32, 4, 64};
  if (model == "llama-3.2-1b") return {T, 32, 8, 64};
  if (model == "stories260k") return {T, 8, 4, 8};
  throw std::runtime_error("unknown model '" + model + "' (tinyllama-1.1b, llama-3.2-1b, stories260k)");
}

Tensor filled(Shape s, std::uint64_t seed) {
  Tensor t = Tensor::zeros(std::move(s));
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = static_cast<float>((static_cast<std::uint64_t>(i) * 2654435761u + seed) % 1000) / 1000.0f - 0.5f;
  return t;
}

double timed_submit_ms(vk::Sequence& seq) {
  seq.submit();  // warm-up + pipeline JIT
  const auto t0 = std::chrono::steady_clock::now();
  seq.submit();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int run(const AttnArgs& a) {
  vk::Device dev;
  Table table({"model", "T", "pass", "backend", "ms", "GFLOPS", "vs CPU ref"});
  nlohmann::json results = nlohmann::json::array();
  std::stringstream ts(a.ts), ms(a.models);
  std::vector<std::int64_t> t_list;
  for (std::string x; std::getline(ts, x, ',');) t_list.push_back(std::stoll(x));
  std::vector<std::string> models;
  for (std::string x; std::getline(ms, x, ',');) models.push_back(x);
  for (auto& model : models) {
    for (auto T : t_list) {
      const AttentionDims d = dims_for(model, T);
      Tensor q = filled({T, d.n_heads, d.head_dim}, 1), k = filled({T, d.n_kv_heads, d.head_dim}, 2),
             v = filled({T, d.n_kv_heads, d.head_dim}, 3), dout = filled({T, d.n_heads, d.head_dim}, 4);
      const double fwd_flops = 2.0 * T * T * d.n_heads * d.head_dim, bwd_flops = 2.5 * fwd_flops;
      double cpu_fwd = 0, cpu_bwd = 0;
      if (a.cpu) {
        Tensor out = Tensor::zeros(q.shape()), lse = Tensor::zeros({T, d.n_heads});
        cpu_fwd = median_ms([&] { ref::attention(q, k, v, nullptr, out, lse); }, a.reps);
        Tensor dq = Tensor::zeros(q.shape()), dk = Tensor::zeros(k.shape()), dv = Tensor::zeros(v.shape());
        cpu_bwd = median_ms([&] { ref::attention_backward(q, k, v, nullptr, out, lse, dout, dq, dk, dv); }, a.reps);
      }
      auto emit = [&](const char* pass, const std::string& backend, double t_ms, double flops, double base) {
        table.row({model, std::to_string(T), pass, backend, fmt::format("{:.3f}", t_ms),
                   fmt::format("{:.2f}", flops / t_ms * 1e-6), base > 0 ? fmt::format("{:.2f}x", base / t_ms) : "-"});
        results.push_back({{"model", model}, {"T", T}, {"pass", pass}, {"backend", backend}, {"ms", t_ms},
                           {"gflops", flops / t_ms * 1e-6}, {"speedup_vs_cpu_ref", base > 0 ? base / t_ms : 0.0}});
      };
      if (a.cpu) {
        emit("fwd", "cpu-ref-f64", cpu_fwd, fwd_flops, cpu_fwd);
        emit("bwd", "cpu-ref-f64", cpu_bwd, bwd_flops, cpu_bwd);
      }
      for (auto variant : {AttentionOptions::Variant::Simple, AttentionOptions::Variant::Lean}) {
        AttentionOptions opt;
        opt.variant = variant;
        const char* name = variant == AttentionOptions::Variant::Simple ? "vulkan-simple" : "vulkan-lean";
        try {  // the variant may not fit this device (Simple's T^2 scratch, Lean's loop limit on lavapipe)
          ops::attention_variant(dev, d, opt);
        } catch (const ShapeError& e) {
          fmt::print("skip {} at T={}: {}\n", name, T, e.what());
          continue;
        }
        vk::Arena arena(dev, vk::Lifetime::Scratch, "bench attention");
        auto dq_ = ops::upload(dev, arena, q, "q"), dk_ = ops::upload(dev, arena, k, "k"),
             dv_ = ops::upload(dev, arena, v, "v"), ddo = ops::upload(dev, arena, dout, "dout");
        auto out = ops::allocate(arena, q.shape(), DType::F32, "out");
        auto lse = ops::allocate(arena, {T, d.n_heads}, DType::F32, "lse");
        auto gq = ops::allocate(arena, q.shape(), DType::F32, "dq"), gk = ops::allocate(arena, k.shape(), DType::F32, "dk"),
             gv = ops::allocate(arena, v.shape(), DType::F32, "dv");
        double f_ms, b_ms;
        {
          vk::Sequence seq(dev);
          ops::attention(seq, arena, dq_, dk_, dv_, nullptr, out, lse, opt);
          f_ms = timed_submit_ms(seq);
        }
        {
          vk::Sequence seq(dev);
          ops::attention_backward(seq, arena, dq_, dk_, dv_, nullptr, out, lse, ddo, gq, gk, gv, opt);
          b_ms = timed_submit_ms(seq);
        }
        emit("fwd", name, f_ms, fwd_flops, cpu_fwd);
        emit("bwd", name, b_ms, bwd_flops, cpu_bwd);
      }
    }
  }
  fmt::print("device: {} ({}), profile {}\n", dev.caps().name, vk::device_type_name(dev.caps().type),
             dev.profile().name());
  table.print();
  write_json(a.out, {{"benchmark", "attention"}, {"device", dev.caps().name}, {"profile", dev.profile().name()},
                     {"results", results}});
  return 0;
}

BenchRegistration register_gpu_bench_attention("attention", "Causal GQA attention fwd/bwd (Simple, Lean) vs the CPU reference",
                      [](CLI::App& sub) {
                        auto a = std::make_shared<AttnArgs>();
                        sub.add_option("--t", a->ts, "Comma list of sequence lengths")->capture_default_str();
                        sub.add_option("--models", a->models, "Comma list")->capture_default_str();
                        sub.add_option("--reps", a->reps, "CPU repetitions")->check(CLI::PositiveNumber);
                        sub.add_flag("!--no-cpu", a->cpu, "Skip the CPU reference baseline");
                        sub.add_option("--out", a->out, "JSON output path")->capture_default_str();
                        return [a] { return run(*a); };
                      });

}  // namespace
}  // namespace pocketlora::bench
