#include "host/ref/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "host/core/error.h"
#include "host/ref/float_kernel.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

namespace {

// Rotates x [T, H, D] in place, in double over E storage (host/ref/float_kernel.h); tokens are independent.
template <typename E> void rope_kernel(Tensor& x, const Tensor& positions, const Tensor& table, RopeLayout layout,
                                       bool inverse) {
  const std::int64_t T = x.dim(0), H = x.dim(1), D = x.dim(2), half = D / 2, P = table.dim(0);
  E* xp = x.data<E>();
  const float* tp = table.data<float>();
  const std::int32_t* pp = positions.data<std::int32_t>();
  parallel_for(T, H * D, [&](std::int64_t t0, std::int64_t t1) {
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t pos = std::clamp<std::int64_t>(pp[t], 0, P - 1);
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t i = 0; i < half; ++i) {
          const double c = tp[(pos * half + i) * 2], s = (inverse ? -1.0 : 1.0) * tp[(pos * half + i) * 2 + 1];
          const std::int64_t base = (t * H + h) * D;
          const std::int64_t i0 = layout == RopeLayout::Interleaved ? base + 2 * i : base + i;
          const std::int64_t i1 = layout == RopeLayout::Interleaved ? i0 + 1 : i0 + half;
          const double a = static_cast<double>(xp[i0]), b = static_cast<double>(xp[i1]);
          xp[i0] = static_cast<E>(a * c - b * s);
          xp[i1] = static_cast<E>(a * s + b * c);
        }
    }
  });
}

}  // namespace

void rope(Tensor& x, const Tensor& positions, const Tensor& table, RopeLayout layout, bool inverse) {
  check_rope_shapes("ref::rope", x.shape(), positions.shape(), table.shape());
  if (positions.dtype() != DType::I32) throw ShapeError("ref::rope: positions must be i32");
  if (all_contiguous_f32({&x})) return rope_kernel<float>(x, positions, table, layout, inverse);
  Tensor xd = x.to(DType::F64);
  rope_kernel<double>(xd, positions, table, layout, inverse);
  x.copy_from(xd);
}

}  // namespace pocketlora::ref
