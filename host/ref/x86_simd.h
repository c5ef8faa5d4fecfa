#pragma once
// <immintrin.h> for the CPU backend's runtime-dispatched x86 kernels (each function carries its own target
// attribute; the build uses no -march flags). GCC 12 flags its own _mm512_undefined_* placeholders inside these
// intrinsics as uninitialised once they are inlined into a kernel, so the two warnings stay off for the rest of the
// including .cpp — a diagnostic pop here would turn them back on before the kernels that inline the intrinsics.
// Include it from .cpp files only.
#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif
