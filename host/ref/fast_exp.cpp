#include "host/ref/fast_exp.h"

#include "host/ref/cpu_simd.h"

namespace pocketlora::ref {

namespace {

[[gnu::always_inline]] inline void exp_loops(float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = clamp_exp_arg(x[i]);
  for (std::int64_t i = 0; i < n; ++i) x[i] = exp_f32_in_range(x[i]);
}

[[gnu::flatten]] void exp_baseline(float* x, std::int64_t n) { exp_loops(x, n); }
#if defined(__x86_64__)
// 8 lanes instead of SSE2's 4: the softmax, cross-entropy and SwiGLU exponentials are a few % of a stories260K step.
__attribute__((target("avx2"), flatten)) void exp_avx2(float* x, std::int64_t n) { exp_loops(x, n); }
#endif

}  // namespace

void exp_f32_inplace(float* x, std::int64_t n) {
#if defined(__x86_64__)
  if (cpu_simd_avx2()) return exp_avx2(x, n);
#endif
  exp_baseline(x, n);
}

}  // namespace pocketlora::ref
