// `pocketlora bench gemm`: the project's Vulkan GEMM (f32 and f16 storage), the CPU backend's f32 GEMM (OpenBLAS)
// and Eigen's f32 GEMM on the same shapes in the same run. GPU time is the median per-dispatch GPU timestamp over
// a recorded sequence of `reps` dispatches (wall clock when the device has no timestamps); CPU times are median
// wall clock.
#include <algorithm>

#include <fmt/format.h>

#include "bench/bench_registry.h"
#include "bench/bench_util.h"
#include "bench/cpu_backend_timing.h"
#include "host/ops/matmul.h"
#include "runtime/command.h"
#include "runtime/device.h"

namespace pocketlora::bench {
namespace {

struct GemmArgs {
  std::string shapes = "1,1024,1024;16,1024,1024;128,1024,1024;128,2048,2048";
  int reps = 5;
  int device = -1;
  std::string out = "bench-gemm.json";
};

int run(const GemmArgs& a) {
  vk::DeviceOptions o;
  if (a.device >= 0) o.index = a.device;
  vk::Device dev(o);
  nlohmann::json results = nlohmann::json::array();
  Table table({"M", "N", "K", "backend", "ms", "GFLOPS", "GB/s", "vs Eigen"});
  for (auto [M, N, K] : parse_mnk_list(a.shapes)) {
    const double flops = 2.0 * M * N * K;
    Tensor A = bench_filled({M, K}, 1.0f), B = bench_filled({N, K}, 0.5f), C = Tensor::zeros({M, N});
    const double eigen_ms = eigen_gemm_ms(A, B, C, a.reps);
    const double blas_ms = cpu_gemm_ms(A, B, C, a.reps);
    const double eigen_gflops = flops / eigen_ms * 1e-6;
    auto emit = [&](const std::string& backend, double ms, std::size_t elem) {
      const double bytes = static_cast<double>((M * K + N * K + M * N) * elem);
      const double gflops = flops / ms * 1e-6;
      table.row({std::to_string(M), std::to_string(N), std::to_string(K), backend, fmt::format("{:.3f}", ms),
                 fmt::format("{:.2f}", gflops), fmt::format("{:.2f}", bytes / ms * 1e-6),
                 fmt::format("{:.2f}x", gflops / eigen_gflops)});
      results.push_back({{"M", M}, {"N", N}, {"K", K}, {"backend", backend}, {"ms", ms}, {"gflops", gflops},
                         {"gbps", bytes / ms * 1e-6}, {"ratio_to_eigen", gflops / eigen_gflops}});
    };
    emit("eigen-f32", eigen_ms, 4);
    emit("cpu-openblas-f32", blas_ms, 4);
    for (DType dt : {DType::F32, DType::F16}) {
      if (dt == DType::F16 && !dev.caps().storage_16bit) continue;
      vk::Arena arena(dev, vk::Lifetime::Scratch, "bench");
      auto dA = ops::upload(dev, arena, A.to(dt), "A"), dB = ops::upload(dev, arena, B.to(dt), "B");
      auto dC = ops::allocate(arena, {M, N}, dt, "C");
      vk::Sequence seq(dev, true);
      for (int r = 0; r < a.reps + 1; ++r) ops::matmul(seq, dA, dB, dC);
      double wall = median_ms([&] { seq.submit(); }, 1, 1) / (a.reps + 1);
      auto t = seq.timings();
      std::vector<double> ms;
      for (std::size_t i = 1; i < t.size(); ++i) ms.push_back(t[i].ms);  // first dispatch is the warm-up
      std::sort(ms.begin(), ms.end());
      const double gpu_ms = ms.empty() ? wall : ms[ms.size() / 2];
      emit(dt == DType::F16 ? "vulkan-f16" : "vulkan-f32", gpu_ms, dtype_size(dt));
    }
  }
  fmt::print("device: {} ({}), profile {}\n", dev.caps().name, vk::device_type_name(dev.caps().type),
             dev.profile().name());
  table.print();
  write_json(a.out, {{"benchmark", "gemm"},
                     {"device", dev.caps().name},
                     {"device_type", vk::device_type_name(dev.caps().type)},
                     {"driver", dev.caps().driver_name},
                     {"profile", dev.profile().name()},
                     {"reps", a.reps},
                     {"results", results}});
  return 0;
}

BenchRegistration register_gpu_bench_gemm("gemm", "Vulkan GEMM (f32/f16) vs CPU OpenBLAS and Eigen on the same shapes", [](CLI::App& sub) {
  auto a = std::make_shared<GemmArgs>();
  sub.add_option("--shapes", a->shapes, "Semicolon-separated M,N,K triples")->capture_default_str();
  sub.add_option("--reps", a->reps, "Timed repetitions")->check(CLI::PositiveNumber)->capture_default_str();
  sub.add_option("--device", a->device, "Device index");
  sub.add_option("--out", a->out, "JSON output path")->capture_default_str();
  return [a] { return run(*a); };
});

}  // namespace
}  // namespace pocketlora::bench
