#pragma once
// CPU backend implementation of the op whose contract (semantics, options, shape checks) is
// host/core/op/lora.h.
#include "host/core/op/lora.h"

namespace pocketlora::ref {

void lora_forward(const Tensor& x, const Tensor& a, const Tensor& b, Tensor& y, Tensor& t, const LoraDropoutKey& key,
                  const LoraOptions& opt);
void lora_backward(const Tensor& x, const Tensor& a, const Tensor& b, const Tensor& t, const Tensor& dy, Tensor& dx,
                   Tensor& da, Tensor& db, const LoraDropoutKey& key, const LoraOptions& opt);

}  // namespace pocketlora::ref
