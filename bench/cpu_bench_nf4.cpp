// `pocketlora bench cpu-nf4`: the CPU NF4 matmuls (host/ref/nf4_matmul.h;
// forward Y = X·Wᵀ and input gradient dX = dY·W) against the CPU f32 GEMM with
// W held in f32 on the layer shapes of TinyLlama-1.1B and Llama-3.2-1B,
// synthetic double-quantized weights. Builds without Vulkan; `bench nf4` adds
// the same CPU rows next to the GPU ones. The f32 baseline is the faster of two
// ways to run it: the CPU backend's (OpenBLAS single-threaded in blocks on the
// backend's pool, host/ref/blas.h) and OpenBLAS's own threading, as a user
// calling cblas_sgemm(v) gets it.
//
// Method (both sides alike): weights are read cold, as in a model's forward,
// where a layer's weight has left the last-level cache by the time it is used
// again. Each timed call takes the next of `copies` copies of the weight,
// enough that the other copies of a cycle cover twice the LLC (--llc-mib,
// default the OS's L3 size; --warm turns this off). f32 and NF4 calls alternate
// within one loop, so both see the same load on a shared machine; the table has
// the median of --reps calls each. GB/s counts the weight bytes a call reads
// (f32: 4 per weight; NF4: codes, 8-bit absmax and nested absmax), GFLOPS
// 2·M·N·K. The GEMV target (issue 9): NF4 >= 2x the f32 GEMV at M <= 4.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_registry.h"
#include "bench/bench_util.h"
#include "bench/cpu_backend_timing.h"
#include "bench/model_layer_shapes.h"
#include "host/ref/blas.h"
#include "host/ref/eigen_view.h"
#include "host/ref/matmul.h"
#include "host/ref/nf4_decode.h"
#include "host/ref/nf4_matmul.h"

namespace pocketlora::bench {
namespace {

constexpr double kGemvTarget = 2.0;

struct CpuNf4Args : Nf4BenchArgs {
  std::int64_t llc_mib = 0;
  bool warm = false;
  std::string isa;  // empty: the machine's best
};

int run(const CpuNf4Args& a) {
  if (!a.isa.empty() && !ref::set_nf4_decode_isa(a.isa))
    throw std::runtime_error("--isa " + a.isa + ": not supported on this machine");
  Table table({"model", "layer", "M", "pass", "f32 pool ms", "f32 openblas ms", "f32 GB/s", "nf4 ms", "nf4 GFLOPS",
               "nf4 GB/s", "nf4 vs f32", "2x"});
  nlohmann::json results = nlohmann::json::array();
  const auto wanted = split_csv(a.layers);
  const std::int64_t llc = last_level_cache_bytes(a.llc_mib);
  int gemv_cases = 0, gemv_met = 0;
  for (const auto& model : split_csv(a.models))
    for (const auto& L : model_layers(model)) {
      if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), L.layer) == wanted.end()) continue;
      const std::int64_t N = L.N, K = L.K;
      const Nf4Quantized w = synthetic_nf4(N, K);
      const double nf4_bytes = N * K / 2.0 + N * K / 64.0 + static_cast<double>(w.dq.nested_absmax.size()) * 4.0;
      const double f32_bytes = 4.0 * N * K;
      const std::vector<Nf4Quantized> w_copies(static_cast<std::size_t>(cold_copies(nf4_bytes, llc, a.warm)), w);
      for (int pass = 0; pass < (a.dx ? 2 : 1); ++pass) {
        const bool fwd = pass == 0;
        // f32 W as the f32 GEMM takes it: [N,K] forward, [K,N] for dX = dY * W
        // (C = A * B^T).
        std::vector<Tensor> f_copies;
        {
          Tensor Wf = dequantize_nf4(w);
          if (!fwd) {
            Tensor Wt = Tensor::zeros({K, N});
            as_matrix(Wt) = as_matrix(Wf).transpose();
            Wf = Wt;
          }
          for (int c = 0; c < cold_copies(f32_bytes, llc, a.warm); ++c) f_copies.push_back(Wf.clone());
        }
        const std::int64_t in_dim = fwd ? K : N, out_dim = fwd ? N : K;
        for (const auto& m_str : split_csv(a.ms)) {
          const std::int64_t M = std::stoll(m_str);
          const Tensor X = bench_filled({M, in_dim}, 1.0f);
          Tensor Y = Tensor::zeros({M, out_dim});
          std::size_t fi = 0, ni = 0;
          auto f32_call = [&] { ref::matmul(X, f_copies[fi++ % f_copies.size()], Y); };
          const auto [pool_ms, nf4_ms] = paired_median_ms(
              f32_call,
              [&] {
                const Nf4Quantized& wc = w_copies[ni++ % w_copies.size()];
                if (fwd) ref::nf4_matmul(X, wc, Y);
                else ref::nf4_matmul_backward(wc, X, Y);
              },
              a.reps);
          double openblas_ms = 0;
          ref::with_openblas_threads([&] { openblas_ms = median_ms(f32_call, a.reps); });
          const double f32_ms = std::min(pool_ms, openblas_ms);
          const double flops = 2.0 * M * N * K, ratio = f32_ms / nf4_ms;
          const bool gemv = M <= ref::kNf4GemvMaxM, met = ratio >= kGemvTarget;
          if (gemv) {
            ++gemv_cases;
            gemv_met += met;
          }
          auto side = [&](double ms, double bytes) {
            return nlohmann::json{
                {"ms", ms}, {"gflops", flops / ms * 1e-6}, {"weight_gbps", bytes / ms * 1e-6}, {"weight_bytes", bytes}};
          };
          table.row({model, L.layer, std::to_string(M), fwd ? "fwd" : "dX", fmt::format("{:.3f}", pool_ms),
                     fmt::format("{:.3f}", openblas_ms), fmt::format("{:.1f}", f32_bytes / f32_ms * 1e-6),
                     fmt::format("{:.3f}", nf4_ms), fmt::format("{:.1f}", flops / nf4_ms * 1e-6),
                     fmt::format("{:.1f}", nf4_bytes / nf4_ms * 1e-6), fmt::format("{:.2f}x", ratio),
                     gemv ? (met ? "met" : "NOT met") : "-"});
          nlohmann::json r{{"model", model},
                           {"layer", L.layer},
                           {"N", N},
                           {"K", K},
                           {"M", M},
                           {"pass", fwd ? "forward" : "dx"},
                           {"f32", side(f32_ms, f32_bytes)},
                           {"f32_pool_ms", pool_ms},
                           {"f32_openblas_threads_ms", openblas_ms},
                           {"nf4", side(nf4_ms, nf4_bytes)},
                           {"speedup_vs_f32_gemm", ratio}};
          if (gemv) r["gemv_2x_target_met"] = met;
          results.push_back(r);
        }
      }
    }
  fmt::print("CPU backend: {} threads, NF4 kernels: {}, weights {} (LLC {} MiB)\n", ref::cpu_threads(),
             ref::nf4_decode_isa(), a.warm ? "warm (one copy)" : "cold (copies cycling through 2x the LLC)", llc >> 20);
  table.print();
  if (gemv_cases > 0)
    fmt::print("GEMV target (NF4 >= {:.0f}x f32 at M <= {}): met in {} of {} cases\n", kGemvTarget, ref::kNf4GemvMaxM,
               gemv_met, gemv_cases);
  write_json(a.out, {{"benchmark", "cpu_nf4_matmul"},
                     {"threads", ref::cpu_threads()},
                     {"nf4_isa", ref::nf4_decode_isa()},
                     {"reps", a.reps},
                     {"cold_weights", !a.warm},
                     {"llc_bytes", llc},
                     {"gemv_target", kGemvTarget},
                     {"gemv_cases", gemv_cases},
                     {"gemv_target_met", gemv_met},
                     {"results", results}});
  return 0;
}

BenchRegistration register_cpu_bench_nf4("cpu-nf4",
                      "CPU NF4 dequant-GEMM/GEMV (fwd + dX) vs CPU f32 GEMM on 1B-model layer "
                      "shapes",
                      [](CLI::App& sub) {
                        auto a = std::make_shared<CpuNf4Args>();
                        a->ms = "1,2,3,4,128";
                        a->reps = 11;
                        a->out = "bench-cpu-nf4.json";
                        add_nf4_bench_options(sub, *a);
                        sub.add_option("--llc-mib", a->llc_mib,
                                       "Last-level cache size for the cold rotation "
                                       "(0: the OS's L3 size)")
                            ->capture_default_str();
                        sub.add_option("--isa", a->isa, "NF4 kernel set: avx512, avx2 or scalar (default: best)");
                        sub.add_flag("--warm", a->warm, "Time one copy of each weight (cache-resident when it fits)");
                        return [a] { return run(*a); };
                      });

}  // namespace
}  // namespace pocketlora::bench
