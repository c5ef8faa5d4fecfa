#pragma once
// A tensor living in device memory: a bound range plus shape and dtype. GPU ops take these; the CPU reference
// takes host/ref Tensor with the same shapes, so tests can run an op both ways.
#include <string>

#include "host/ref/tensor.h"
#include "runtime/command.h"
#include "runtime/device.h"
#include "runtime/memory.h"

namespace pocketlora::ops {

struct DeviceTensor {
  vk::BufferSlice buf;
  Shape shape;
  DType dtype = DType::F32;

  std::int64_t numel() const { return shape_numel(shape); }
  std::int64_t dim(int i) const { return shape.at(static_cast<std::size_t>(i < 0 ? i + rank() : i)); }
  int rank() const { return static_cast<int>(shape.size()); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype); }
};

DeviceTensor allocate(vk::Arena& arena, Shape shape, DType dtype, const std::string& what);
DeviceTensor upload(vk::Device& dev, vk::Arena& arena, const Tensor& t, const std::string& what);
Tensor download(vk::Device& dev, const DeviceTensor& t);

// "op: name [2, 3] f32" — for error messages.
std::string describe(const std::string& name, const DeviceTensor& t);

}  // namespace pocketlora::ops
