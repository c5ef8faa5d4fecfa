#include "host/ops/device_tensor.h"

#include "host/util/error.h"

namespace pocketlora::ops {

DeviceTensor allocate(vk::Arena& arena, Shape shape, DType dtype, const std::string& what) {
  DeviceTensor t;
  t.shape = std::move(shape);
  t.dtype = dtype;
  t.buf = arena.allocate(t.nbytes(), what);
  return t;
}

DeviceTensor upload(vk::Device& dev, vk::Arena& arena, const Tensor& t, const std::string& what) {
  Tensor c = t.is_contiguous() ? t : t.clone();
  DeviceTensor d = allocate(arena, c.shape(), c.dtype(), what);
  if (c.nbytes()) dev.upload(d.buf, c.raw(), c.nbytes());
  return d;
}

Tensor download(vk::Device& dev, const DeviceTensor& t) {
  Tensor out = Tensor::zeros(t.shape, t.dtype);
  if (out.nbytes()) dev.download(t.buf, out.raw(), out.nbytes());
  return out;
}

std::string describe(const std::string& name, const DeviceTensor& t) {
  return name + " " + shape_str(t.shape) + " " + dtype_name(t.dtype);
}

}  // namespace pocketlora::ops
