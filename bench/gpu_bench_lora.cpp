// `pocketlora bench lora`: LoRA forward and backward on the GPU vs the CPU reference, r in {8, 16, 64}, on a
// 2048 -> 2048 projection (the 1B models' q/o shape) with M tokens.
#include <chrono>
#include <sstream>

#include <fmt/format.h>

#include "bench/bench_registry.h"
#include "bench/bench_util.h"
#include "host/ops/lora.h"
#include "host/ref/lora.h"
#include "runtime/command.h"

namespace pocketlora::bench {
namespace {

struct LoraArgs {
  std::string ranks = "8,16,64";
  std::int64_t m = 128, k = 2048, n = 2048;
  float dropout = 0.05f;
  int reps = 3;
  std::string out = "bench-lora.json";
};

int run(const LoraArgs& a) {
  vk::Device dev;
  Table table({"r", "M", "K", "N", "pass", "backend", "ms", "GFLOPS", "vs CPU ref"});
  nlohmann::json results = nlohmann::json::array();
  std::stringstream ss(a.ranks);
  for (std::string rs; std::getline(ss, rs, ',');) {
    const std::int64_t r = std::stoll(rs), M = a.m, K = a.k, N = a.n;
    LoraOptions opt;
    opt.scale = lora_scale(2.0f * static_cast<float>(r), r, false);
    opt.dropout = a.dropout;
    const LoraDropoutKey key{7, 0, 0};
    Tensor x = bench_filled({M, K}, 1), A = bench_filled({r, K}, 0.01f), B = bench_filled({N, r}, 0.01f), dy = bench_filled({M, N}, 1);
    Tensor y = Tensor::zeros({M, N}), t = Tensor::zeros({M, r}), dx = Tensor::zeros({M, K}),
           da = Tensor::zeros({r, K}), db = Tensor::zeros({N, r});
    const double cpu_f = median_ms([&] { ref::lora_forward(x, A, B, y, t, key, opt); }, a.reps);
    const double cpu_b = median_ms([&] { ref::lora_backward(x, A, B, t, dy, dx, da, db, key, opt); }, a.reps);
    vk::Arena arena(dev, vk::Lifetime::Step, "bench lora");
    auto X = ops::upload(dev, arena, x, "x"), GA = ops::upload(dev, arena, A, "a"), GB = ops::upload(dev, arena, B, "b"),
         Y = ops::upload(dev, arena, y, "y"), T = ops::upload(dev, arena, t, "t"), DY = ops::upload(dev, arena, dy, "dy"),
         DX = ops::upload(dev, arena, dx, "dx"), DA = ops::upload(dev, arena, da, "da"), DB = ops::upload(dev, arena, db, "db");
    auto KEY = ops::upload(dev, arena, lora_key_tensor(key), "dropout key");
    auto time_seq = [&](vk::Sequence& seq) {
      seq.submit();  // warm-up
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < a.reps; ++i) seq.submit();
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / a.reps;
    };
    vk::Sequence fwd(dev), bwd(dev);
    ops::lora_forward(fwd, arena, X, GA, GB, Y, T, KEY, opt);
    ops::lora_backward(bwd, arena, X, GA, GB, T, DY, DX, DA, DB, KEY, opt);
    const double gpu_f = time_seq(fwd), gpu_b = time_seq(bwd);
    const double f_flops = 2.0 * M * r * (K + N), b_flops = 2.0 * M * r * (2 * N + 2 * K);
    auto emit = [&](const char* pass, const char* backend, double ms, double flops, double base) {
      table.row({std::to_string(r), std::to_string(M), std::to_string(K), std::to_string(N), pass, backend,
                 fmt::format("{:.3f}", ms), fmt::format("{:.2f}", flops / ms * 1e-6), fmt::format("{:.2f}x", base / ms)});
      results.push_back({{"r", r}, {"M", M}, {"K", K}, {"N", N}, {"pass", pass}, {"backend", backend}, {"ms", ms},
                         {"gflops", flops / ms * 1e-6}, {"speedup_vs_cpu_ref", base / ms}});
    };
    emit("fwd", "cpu-ref", cpu_f, f_flops, cpu_f);
    emit("fwd", "vulkan", gpu_f, f_flops, cpu_f);
    emit("bwd", "cpu-ref", cpu_b, b_flops, cpu_b);
    emit("bwd", "vulkan", gpu_b, b_flops, cpu_b);
  }
  fmt::print("device: {} ({}), profile {}; GPU times are wall clock per submit (dispatch overhead included)\n",
             dev.caps().name, vk::device_type_name(dev.caps().type), dev.profile().name());
  table.print();
  write_json(a.out, {{"benchmark", "lora"}, {"device", dev.caps().name}, {"results", results}});
  return 0;
}

BenchRegistration register_gpu_bench_lora("lora", "LoRA forward/backward (GPU vs CPU reference) for several ranks", [](CLI::App& sub) {
  auto a = std::make_shared<LoraArgs>();
  sub.add_option("--ranks", a->ranks, "Comma list of ranks")->capture_default_str();
  sub.add_option("-m", a->m, "Tokens")->capture_default_str();
  sub.add_option("-k", a->k, "Input features")->capture_default_str();
  sub.add_option("-n", a->n, "Output features")->capture_default_str();
  sub.add_option("--dropout", a->dropout, "LoRA dropout")->capture_default_str();
  sub.add_option("--reps", a->reps, "Repetitions")->check(CLI::PositiveNumber);
  sub.add_option("--out", a->out, "JSON output path")->capture_default_str();
  return [a] { return run(*a); };
});

}  // namespace
}  // namespace pocketlora::bench
