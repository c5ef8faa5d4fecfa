#pragma once
// How the CPU backend's element-wise kernels pick their element type. Each kernel is written once as a template
// over E (float or double) that reads and writes tensors in place and computes in double: with every tensor f32
// (training) it runs on them directly, with no f64 copy of a whole tensor; otherwise (f64 gradient checks, mixed
// or f16 operands) on f64 copies rounded back once. Both give the same values: the arithmetic is the same double
// arithmetic, and an f32 -> f64 widening is exact.
#include <initializer_list>

#include "host/core/tensor.h"

namespace pocketlora::ref {

inline bool all_contiguous_f32(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t->dtype() != DType::F32 || !t->is_contiguous()) return false;
  return true;
}

}  // namespace pocketlora::ref
