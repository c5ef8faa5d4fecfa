#include "bench/cpu_backend_timing.h"

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

}  // namespace pocketlora::bench
