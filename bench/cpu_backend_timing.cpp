#include "bench/cpu_backend_timing.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "host/ref/matmul.h"
#include "host/ref/nf4_matmul.h"
#include "host/ref/eigen_view.h"

namespace pocketlora::bench {

double eigen_gemm_ms(const Tensor& a, const Tensor& b, Tensor& c, int reps) {
  const auto A = as_matrix(a);
  const auto B = as_matrix(b);
  auto C = as_matrix(c);
  return median_ms([&] { C.noalias() = A * B.transpose(); }, reps);
}

double cpu_gemm_ms(const Tensor& a, const Tensor& b, Tensor& c, int reps) {
  return median_ms([&] { ref::matmul(a, b, c); }, reps);
}

Nf4Quantized synthetic_nf4(std::int64_t N, std::int64_t K) {
  Nf4Quantized q;
  q.shape = {N, K};
  const std::int64_t n = N * K, blocks = (n + kNf4BlockSize - 1) / kNf4BlockSize;
  q.codes.resize(static_cast<std::size_t>((n + 1) / 2));
  for (std::size_t i = 0; i < q.codes.size(); ++i) q.codes[i] = static_cast<std::uint8_t>(i * 2654435761u >> 13);
  q.double_quant = true;
  q.dq.absmax_q.resize(static_cast<std::size_t>(blocks));
  for (std::size_t i = 0; i < q.dq.absmax_q.size(); ++i) q.dq.absmax_q[i] = static_cast<std::uint8_t>(i * 40503u >> 7);
  q.dq.nested_absmax.assign(static_cast<std::size_t>((blocks + kNf4NestedBlockSize - 1) / kNf4NestedBlockSize), 0.01f);
  q.dq.offset = 0.02f;
  q.absmax = dequantize_absmax(q.dq, static_cast<std::size_t>(blocks));
  return q;
}

double cpu_nf4_ms(const Tensor& in, const Nf4Quantized& w, Tensor& out, bool forward, int reps) {
  return median_ms(
      [&] {
        if (forward) ref::nf4_matmul(in, w, out);
        else ref::nf4_matmul_backward(w, in, out);
      },
      reps);
}

std::int64_t last_level_cache_bytes(std::int64_t llc_mib) {
  if (llc_mib > 0) return llc_mib << 20;
  // sysfs describes the L3 this CPU shares (32 MiB on a Zen 4 CCD); sysconf may sum the whole package's (384 MiB).
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream level(dir + "level"), size(dir + "size");
    int lv = 0;
    std::int64_t kib = 0;
    std::string unit;
    if (level >> lv && lv == 3 && size >> kib >> unit && kib > 0 && unit.starts_with("K")) return kib << 10;
  }
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  return l3 > 0 ? l3 : std::int64_t{32} << 20;
}

int cold_copies(double weight_bytes, std::int64_t llc_bytes, bool warm) {
  if (warm) return 1;
  // The other copies of one cycle must cover 2x the LLC: 1 + ceil(2 * LLC / bytes) copies.
  return 1 + std::max(1, static_cast<int>(std::ceil(2.0 * static_cast<double>(llc_bytes) / weight_bytes)));
}

std::pair<double, double> paired_median_ms(const std::function<void()>& a, const std::function<void()>& b, int reps) {
  auto time = [](const std::function<void()>& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  a();
  b();
  std::vector<double> ta, tb;
  for (int i = 0; i < std::max(1, reps); ++i) {
    ta.push_back(time(a));
    tb.push_back(time(b));
  }
  auto median = [](std::vector<double>& t) {
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  return {median(ta), median(tb)};
}

}  // namespace pocketlora::bench
