#pragma once
// SwiGLU gate: h = silu(g) * u (element-wise), and add: y = a + alpha * b.
#include "host/ref/tensor.h"

namespace pocketlora {
void check_same_shapes(const char* op, std::initializer_list<std::pair<const char*, const Shape*>> shapes);
namespace ref {
void swiglu(const Tensor& g, const Tensor& u, Tensor& h);
void swiglu_backward(const Tensor& g, const Tensor& u, const Tensor& dh, Tensor& dg, Tensor& du);
void add(const Tensor& a, const Tensor& b, Tensor& y, float alpha = 1.0f);
}  // namespace ref
}  // namespace pocketlora
