#include "host/core/op/rmsnorm.h"

#include <cmath>

#include "host/core/error.h"

namespace pocketlora {

std::pair<std::int64_t, std::int64_t> check_rmsnorm_shapes(const char* op, const Shape& x, const Shape& w) {
  if (x.empty() || w.size() != 1 || x.back() != w[0] || w[0] == 0)
    throw ShapeError(std::string(op) + ": x " + shape_str(x) + " and w " + shape_str(w) +
                     " — expected x [..., D] and w [D] with D > 0");
  return {shape_numel(x) / w[0], w[0]};
}

}  // namespace pocketlora
