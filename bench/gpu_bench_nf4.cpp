// `pocketlora bench nf4`: NF4 dequant-GEMM (forward Y = X·Wᵀ and input gradient dX = dY·W), on the GPU and on the
// CPU backend (host/ref/nf4_matmul.h), against the same device's f32 GEMM on the same shapes (W held in f32;
// CPU: OpenBLAS, cblas_sgemv at M = 1) and Eigen's f32 GEMM, on real layer shapes of
// TinyLlama-1.1B and Llama-3.2-1B with synthetic weights. Reports GFLOPS, effective GB/s (NF4 bytes counted as
// stored: 0.5 B/weight + 1 B per 64 for double-quantized absmax) and % of the roofline measured in the same run.
#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "bench/bench_registry.h"
#include "bench/bench_util.h"
#include "bench/cpu_backend_timing.h"
#include "bench/gpu_roofline.h"
#include "bench/model_layer_shapes.h"
#include "host/ops/matmul.h"
#include "host/ops/nf4_matmul.h"
#include "runtime/command.h"
#include "host/ref/eigen_view.h"

namespace pocketlora::bench {
namespace {

// Median of GPU timestamps of dispatches 1..n (dispatch 0 is the warm-up), wall clock if no timestamps.
double gpu_ms(vk::Sequence& seq, int n_dispatch) {
  const auto t0 = std::chrono::steady_clock::now();
  seq.submit();
  const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto t = seq.timings();
  std::vector<double> ms;
  for (std::size_t i = 1; i < t.size(); ++i) ms.push_back(t[i].ms);
  if (ms.empty()) return wall / n_dispatch;
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int run(const Nf4BenchArgs& a) {
  vk::Device dev;
  const Roofline roof = measure_roofline(dev);
  fmt::print("device: {} ({}), profile {}; measured peak {:.2f} GFLOPS, {:.2f} GB/s\n", dev.caps().name,
             vk::device_type_name(dev.caps().type), dev.profile().name(), roof.peak_gflops, roof.peak_gbps);
  Table table({"model", "layer", "M", "pass", "backend", "ms", "GFLOPS", "GB/s", "%roof", "vs f32 GEMM", "vs Eigen"});
  nlohmann::json results = nlohmann::json::array();
  std::vector<std::int64_t> m_list;
  for (auto& s : split_csv(a.ms)) m_list.push_back(std::stoll(s));
  const auto wanted_layers = split_csv(a.layers);

  for (auto& model : split_csv(a.models)) {
    for (auto& L : model_layers(model)) {
      if (!wanted_layers.empty() && std::find(wanted_layers.begin(), wanted_layers.end(), L.layer) == wanted_layers.end())
        continue;
      const std::int64_t N = L.N, K = L.K;
      // One synthetic double-quantized weight (bitsandbytes' layout and nested map) for the GPU and the CPU rows.
      const Nf4Quantized wq = synthetic_nf4(N, K);
      vk::Arena weights(dev, vk::Lifetime::Permanent, "bench weights");
      auto w = ops::upload_nf4(dev, weights, wq, model + "." + L.layer);
      Tensor Wf = Tensor::zeros({N, K});
      {
        auto wd = ops::allocate(weights, {N, K}, DType::F32, "W f32");
        vk::Sequence s(dev);
        ops::nf4_dequantize(s, w, wd);
        s.submit();
        Wf = ops::download(dev, wd);
      }
      Tensor Wt = Tensor::zeros({K, N});
      as_matrix(Wt) = as_matrix(Wf).transpose();
      auto wf_dev = ops::upload(dev, weights, Wf, "W f32");
      auto wt_dev = ops::upload(dev, weights, Wt, "W^T f32");
      const double nf4_weight_bytes =
          N * K / 2.0 + static_cast<double>(wq.dq.absmax_q.size()) + wq.dq.nested_absmax.size() * 4.0;

      for (std::int64_t M : m_list) {
        for (int pass = 0; pass < (a.dx ? 2 : 1); ++pass) {
          const bool fwd = pass == 0;
          const std::int64_t in_dim = fwd ? K : N, out_dim = fwd ? N : K;
          const double flops = 2.0 * M * N * K;
          const double act_bytes = 4.0 * M * (in_dim + out_dim);
          vk::Arena acts(dev, vk::Lifetime::Step, "bench activations");
          Tensor X = Tensor::zeros({M, in_dim});
          for (std::int64_t i = 0; i < X.numel(); ++i) X.data<float>()[i] = static_cast<float>(i % 13) * 0.01f;
          auto x = ops::upload(dev, acts, X, "X");
          auto y = ops::allocate(acts, {M, out_dim}, DType::F32, "Y");

          double nf4_ms, f32_ms;
          {
            vk::Sequence seq(dev, true);
            for (int r = 0; r <= a.reps; ++r) {
              if (fwd) ops::nf4_matmul(seq, x, w, y);
              else ops::nf4_matmul_backward(seq, w, x, y);
            }
            nf4_ms = gpu_ms(seq, a.reps + 1);
          }
          {
            vk::Sequence seq(dev, true);
            for (int r = 0; r <= a.reps; ++r) ops::matmul(seq, x, fwd ? wf_dev : wt_dev, y);
            f32_ms = gpu_ms(seq, a.reps + 1);
          }
          Tensor Y = Tensor::zeros({M, out_dim});
          const double eigen_ms = eigen_gemm_ms(X, fwd ? Wf : Wt, Y, a.reps);
          const double cpu_f32_ms = cpu_gemm_ms(X, fwd ? Wf : Wt, Y, a.reps);
          const double cpu_nf4 = cpu_nf4_ms(X, wq, Y, fwd, a.reps);
          // `same_device_f32_ms`: the f32 GEMM of the row's own device (GPU rows: Vulkan, CPU rows: OpenBLAS).
          auto emit = [&](const std::string& backend, double ms, double bytes, double same_device_f32_ms) {
            const double gflops = flops / ms * 1e-6, gbps = bytes / ms * 1e-6;
            // The roofline is the GPU's: CPU rows get none.
            const bool gpu = backend.starts_with("vulkan");
            const double roof_pct = gpu ? 100.0 * roof.bound_ms(flops, bytes) / ms : 0.0;
            table.row({model, L.layer, std::to_string(M), fwd ? "fwd" : "dX", backend, fmt::format("{:.3f}", ms),
                       fmt::format("{:.2f}", gflops), fmt::format("{:.2f}", gbps),
                       gpu ? fmt::format("{:.0f}%", roof_pct) : "-",
                       fmt::format("{:.2f}x", same_device_f32_ms / ms), fmt::format("{:.2f}x", eigen_ms / ms)});
            results.push_back({{"model", model}, {"layer", L.layer}, {"N", N}, {"K", K}, {"M", M},
                               {"pass", fwd ? "forward" : "dx"}, {"backend", backend}, {"ms", ms},
                               {"gflops", gflops}, {"gbps", gbps},
                               {"roofline_pct", gpu ? nlohmann::json(roof_pct) : nlohmann::json()},
                               {"speedup_vs_f32_gemm", same_device_f32_ms / ms}, {"speedup_vs_eigen", eigen_ms / ms}});
          };
          emit("vulkan-nf4", nf4_ms, nf4_weight_bytes + act_bytes, f32_ms);
          emit("vulkan-f32", f32_ms, 4.0 * N * K + act_bytes, f32_ms);
          emit("cpu-nf4", cpu_nf4, nf4_weight_bytes + act_bytes, cpu_f32_ms);
          emit("cpu-openblas-f32", cpu_f32_ms, 4.0 * N * K + act_bytes, cpu_f32_ms);
          emit("eigen-f32", eigen_ms, 4.0 * N * K + act_bytes, cpu_f32_ms);
        }
      }
    }
  }
  table.print();
  write_json(a.out, {{"benchmark", "nf4_matmul"},
                     {"device", dev.caps().name},
                     {"profile", dev.profile().name()},
                     {"peak_gflops", roof.peak_gflops},
                     {"peak_gbps", roof.peak_gbps},
                     {"reps", a.reps},
                     {"results", results}});
  return 0;
}

BenchRegistration register_gpu_bench_nf4("nf4", "NF4 dequant-GEMM (fwd + dX; Vulkan and CPU) vs f32 GEMM vs Eigen on 1B-model layer shapes",
                      [](CLI::App& sub) {
                        auto a = std::make_shared<Nf4BenchArgs>();
                        a->ms = "1,16,128";
                        a->reps = 3;
                        a->out = "bench-nf4.json";
                        add_nf4_bench_options(sub, *a);
                        return [a] { return run(*a); };
                      });

}  // namespace
}  // namespace pocketlora::bench
