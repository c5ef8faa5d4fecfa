#include "host/ref/cpu_simd.h"

#include <atomic>

namespace pocketlora::ref {

namespace {
std::atomic<bool> g_allowed{true};

bool cpu_has_avx2() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") != 0;
#else
  return false;
#endif
}
}  // namespace

bool cpu_simd_avx2() {
  static const bool has = cpu_has_avx2();
  return has && g_allowed.load(std::memory_order_relaxed);
}

void set_cpu_simd_avx2(bool allowed) { g_allowed.store(allowed, std::memory_order_relaxed); }

}  // namespace pocketlora::ref
