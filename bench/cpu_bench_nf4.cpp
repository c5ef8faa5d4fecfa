// `pocketlora bench cpu-nf4`: the CPU NF4 matmuls (host/ref/nf4_matmul.h; forward Y = X·Wᵀ and input gradient
// dX = dY·W) against the CPU f32 GEMM with W held in f32 (OpenBLAS; cblas_sgemv at M = 1) on the layer shapes of
// TinyLlama-1.1B and Llama-3.2-1B, synthetic double-quantized weights. Builds without Vulkan; `bench nf4` adds the
// same CPU rows next to the GPU ones.
#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "bench/bench_registry.h"
#include "bench/bench_util.h"
#include "bench/cpu_backend_timing.h"
#include "bench/model_layer_shapes.h"
#include "host/ref/blas.h"
#include "host/ref/nf4_decode.h"
#include "host/ref/eigen_view.h"

namespace pocketlora::bench {
namespace {

int run(const Nf4BenchArgs& a) {
  Table table({"model", "layer", "M", "pass", "backend", "ms", "GFLOPS", "GB/s", "vs f32"});
  nlohmann::json results = nlohmann::json::array();
  const auto wanted = split_csv(a.layers);
  for (const auto& model : split_csv(a.models))
    for (const auto& L : model_layers(model)) {
      if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), L.layer) == wanted.end()) continue;
      const std::int64_t N = L.N, K = L.K;
      const Nf4Quantized w = synthetic_nf4(N, K);
      const Tensor Wf = dequantize_nf4(w);
      Tensor Wt = Tensor::zeros({K, N});
      as_matrix(Wt) = as_matrix(Wf).transpose();
      const double nf4_bytes = N * K / 2.0 + N * K / 64.0 + static_cast<double>(w.dq.nested_absmax.size()) * 4.0;
      for (const auto& m_str : split_csv(a.ms)) {
        const std::int64_t M = std::stoll(m_str);
        for (int pass = 0; pass < (a.dx ? 2 : 1); ++pass) {
          const bool fwd = pass == 0;
          const std::int64_t in_dim = fwd ? K : N, out_dim = fwd ? N : K;
          const Tensor X = bench_filled({M, in_dim}, 1.0f);
          Tensor Y = Tensor::zeros({M, out_dim});
          const double f32_ms = cpu_gemm_ms(X, fwd ? Wf : Wt, Y, a.reps);
          const double nf4_ms = cpu_nf4_ms(X, w, Y, fwd, a.reps);
          const double flops = 2.0 * M * N * K, act_bytes = 4.0 * M * (in_dim + out_dim);
          for (auto [backend, ms, bytes] : {std::tuple<const char*, double, double>{"cpu-nf4", nf4_ms, nf4_bytes},
                                            {"cpu-openblas-f32", f32_ms, 4.0 * N * K}}) {
            const double gflops = flops / ms * 1e-6, gbps = (bytes + act_bytes) / ms * 1e-6;
            table.row({model, L.layer, std::to_string(M), fwd ? "fwd" : "dX", backend, fmt::format("{:.3f}", ms),
                       fmt::format("{:.2f}", gflops), fmt::format("{:.2f}", gbps),
                       fmt::format("{:.2f}x", f32_ms / ms)});
            results.push_back({{"model", model}, {"layer", L.layer}, {"N", N}, {"K", K}, {"M", M},
                               {"pass", fwd ? "forward" : "dx"}, {"backend", backend}, {"ms", ms}, {"gflops", gflops},
                               {"gbps", gbps}, {"speedup_vs_f32_gemm", f32_ms / ms}});
          }
        }
      }
    }
  fmt::print("CPU backend: {} threads, NF4 kernels: {}\n", ref::cpu_threads(), ref::nf4_decode_isa());
  table.print();
  write_json(a.out, {{"benchmark", "cpu_nf4_matmul"},
                     {"threads", ref::cpu_threads()},
                     {"nf4_isa", ref::nf4_decode_isa()},
                     {"reps", a.reps},
                     {"results", results}});
  return 0;
}

BenchRegistration reg("cpu-nf4", "CPU NF4 dequant-GEMM/GEMV (fwd + dX) vs CPU f32 GEMM on 1B-model layer shapes",
                      [](CLI::App& sub) {
                        auto a = std::make_shared<Nf4BenchArgs>();
                        a->ms = "1,128";
                        a->reps = 5;
                        a->out = "bench-cpu-nf4.json";
                        add_nf4_bench_options(sub, *a);
                        return [a] { return run(*a); };
                      });

}  // namespace
}  // namespace pocketlora::bench
