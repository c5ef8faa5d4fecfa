#include "host/ref/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "host/core/error.h"

namespace pocketlora::ref {

void rope(Tensor& x, const Tensor& positions, const Tensor& table, RopeLayout layout, bool inverse) {
  check_rope_shapes("ref::rope", x.shape(), positions.shape(), table.shape());
  if (positions.dtype() != DType::I32) throw ShapeError("ref::rope: positions must be i32");
  const std::int64_t T = x.dim(0), H = x.dim(1), D = x.dim(2), half = D / 2, P = table.dim(0);
  Tensor xd = x.to(DType::F64);
  double* xp = xd.data<double>();
  const float* tp = table.data<float>();
  for (std::int64_t t = 0; t < T; ++t) {
    const std::int64_t pos = std::clamp<std::int64_t>(positions.data<std::int32_t>()[t], 0, P - 1);
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t i = 0; i < half; ++i) {
        const double c = tp[(pos * half + i) * 2], s = (inverse ? -1.0 : 1.0) * tp[(pos * half + i) * 2 + 1];
        const std::int64_t base = (t * H + h) * D;
        const std::int64_t i0 = layout == RopeLayout::Interleaved ? base + 2 * i : base + i;
        const std::int64_t i1 = layout == RopeLayout::Interleaved ? i0 + 1 : i0 + half;
        const double a = xp[i0], b = xp[i1];
        xp[i0] = a * c - b * s;
        xp[i1] = a * s + b * c;
      }
  }
  x.copy_from(xd);
}

}  // namespace pocketlora::ref
