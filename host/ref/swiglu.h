#pragma once
// CPU backend implementation of the op whose contract (semantics, options, shape checks) is
// host/core/op/swiglu.h.
#include "host/core/op/swiglu.h"

namespace pocketlora::ref {

void swiglu(const Tensor& g, const Tensor& u, Tensor& h);
void swiglu_backward(const Tensor& g, const Tensor& u, const Tensor& dh, Tensor& dg, Tensor& du);
void add(const Tensor& a, const Tensor& b, Tensor& y, float alpha = 1.0f);

}  // namespace pocketlora::ref
