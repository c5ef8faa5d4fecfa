#include "host/core/op/swiglu.h"

#include <cmath>

#include "host/core/error.h"

namespace pocketlora {

void check_same_shapes(const char* op, std::initializer_list<std::pair<const char*, const Shape*>> shapes) {
  const Shape& first = *shapes.begin()->second;
  for (auto& [name, s] : shapes)
    if (*s != first) {
      std::string all;
      for (auto& [n2, s2] : shapes) all += std::string(all.empty() ? "" : ", ") + n2 + " " + shape_str(*s2);
      throw ShapeError(std::string(op) + ": operands must have the same shape (" + all + ")");
    }
}

}  // namespace pocketlora
