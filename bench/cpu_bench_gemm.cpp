// `pocketlora bench cpu-gemm`: the CPU backend's f32 GEMM (single-threaded
// OpenBLAS calls in blocks on the backend's pool; cblas_sgemv at M = 1) against
// Eigen's own GEMM (the CPU path before OpenBLAS) and OpenBLAS's own threading
// on the same shapes in the same run. Builds without Vulkan; `bench gemm` adds
// the same CPU rows next to the GPU ones.
#include <fmt/format.h>

#include "bench/bench_registry.h"
#include "bench/bench_util.h"
#include "bench/cpu_backend_timing.h"
#include "host/ref/blas.h"

namespace pocketlora::bench {
namespace {

struct CpuGemmArgs {
  std::string shapes = "1,2048,2048;128,2048,2048;128,5632,2048;128,2048,5632;512,2048,2048";
  int reps = 5;
  std::string out = "bench-cpu-gemm.json";
};

int run(const CpuGemmArgs& a) {
  nlohmann::json results = nlohmann::json::array();
  Table table({"M", "N", "K", "backend", "ms", "GFLOPS", "vs Eigen"});
  for (auto [M, N, K] : parse_mnk_list(a.shapes)) {
    const double flops = 2.0 * M * N * K;
    Tensor A = bench_filled({M, K}, 1.0f), B = bench_filled({N, K}, 0.5f), C = Tensor::zeros({M, N});
    const double eigen_ms = eigen_gemm_ms(A, B, C, a.reps);
    const double blas_ms = cpu_gemm_ms(A, B, C, a.reps);
    double threaded_ms = 0;
    ref::with_openblas_threads([&] { threaded_ms = cpu_gemm_ms(A, B, C, a.reps); });
    for (auto [backend, ms] : {std::pair<const char*, double>{"eigen-f32", eigen_ms},
                               {"cpu-backend-f32", blas_ms},
                               {"openblas-threads-f32", threaded_ms}}) {
      const double gflops = flops / ms * 1e-6;
      table.row({std::to_string(M), std::to_string(N), std::to_string(K), backend, fmt::format("{:.3f}", ms),
                 fmt::format("{:.2f}", gflops), fmt::format("{:.2f}x", eigen_ms / ms)});
      results.push_back({{"M", M},
                         {"N", N},
                         {"K", K},
                         {"backend", backend},
                         {"ms", ms},
                         {"gflops", gflops},
                         {"ratio_to_eigen", eigen_ms / ms}});
    }
  }
  fmt::print("CPU backend: {} threads\n", ref::cpu_threads());
  table.print();
  write_json(a.out,
             {{"benchmark", "cpu_gemm"}, {"threads", ref::cpu_threads()}, {"reps", a.reps}, {"results", results}});
  return 0;
}

BenchRegistration register_cpu_bench_gemm(
    "cpu-gemm", "CPU f32 GEMM: OpenBLAS (the CPU backend) vs Eigen on the same shapes", [](CLI::App& sub) {
      auto a = std::make_shared<CpuGemmArgs>();
      sub.add_option("--shapes", a->shapes, "Semicolon-separated M,N,K triples")->capture_default_str();
      sub.add_option("--reps", a->reps, "Timed repetitions")->check(CLI::PositiveNumber)->capture_default_str();
      sub.add_option("--out", a->out, "JSON output path")->capture_default_str();
      return [a] { return run(*a); };
    });

}  // namespace
}  // namespace pocketlora::bench
