#include "host/core/op/cross_entropy.h"

#include "host/core/error.h"

namespace pocketlora {

void check_cross_entropy(const char* op, const Shape& logits, const Shape& labels) {
  if (logits.size() != 2 || labels.size() != 1 || labels[0] != logits[0] || logits[1] == 0)
    throw ShapeError(std::string(op) + ": logits " + shape_str(logits) + ", labels " + shape_str(labels) +
                     " — expected logits [T, V] with V > 0 and labels [T]");
}

}  // namespace pocketlora
