#pragma once
// GPU RoPE in place on x [T, heads, D] (f32 or f16, rotated in f32); the table comes from rope_table()
// (host/ref/rope.h), uploaded once.
#include "host/core/op/rope.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {
void rope(vk::Sequence& seq, const DeviceTensor& x, const DeviceTensor& positions, const DeviceTensor& table,
          RopeLayout layout, bool inverse = false);
}  // namespace pocketlora::ops
