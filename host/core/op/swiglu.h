#pragma once
// SwiGLU gate: h = silu(g) * u (element-wise), and add: y = a + alpha * b.
#include "host/core/tensor.h"

namespace pocketlora {
void check_same_shapes(const char* op, std::initializer_list<std::pair<const char*, const Shape*>> shapes);

}  // namespace pocketlora
