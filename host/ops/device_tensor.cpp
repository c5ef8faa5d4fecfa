#include "host/ops/device_tensor.h"

#include <algorithm>

#include "host/core/error.h"

namespace pocketlora::ops {

std::uint64_t arena_bytes(const vk::Device& dev, std::uint64_t bytes) {
  const std::uint64_t a = dev.alignment();
  return (std::max<std::uint64_t>(bytes, 4) + a - 1) / a * a;
}

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

RowChunkedTensor allocate_row_chunked(vk::Arena& arena, Shape shape, DType dtype, const std::string& what,
                                      std::uint64_t max_chunk_bytes) {
  if (shape.size() != 2 || shape[0] <= 0 || shape[1] <= 0)
    throw ShapeError("allocate_row_chunked: '" + what + "' must be 2-D and non-empty, got " + shape_str(shape));
  const std::uint64_t row_bytes = static_cast<std::uint64_t>(shape[1]) * dtype_size(dtype);
  std::uint64_t limit = std::min<std::uint64_t>(arena.device().caps().max_storage_buffer_range,
                                                arena.device().block_size());
  if (max_chunk_bytes) limit = std::min(limit, max_chunk_bytes);
  if (row_bytes > limit)
    throw ShapeError("allocate_row_chunked: one row of '" + what + "' " + shape_str(shape) + " is " +
                     std::to_string(row_bytes) + " bytes, above the " + std::to_string(limit) + "-byte binding limit");
  RowChunkedTensor t;
  t.shape = shape;
  t.dtype = dtype;
  t.rows_per_chunk = static_cast<std::int64_t>(limit / row_bytes);
  for (std::int64_t r = 0; r < shape[0]; r += t.rows_per_chunk) {
    const std::int64_t rows = std::min(t.rows_per_chunk, shape[0] - r);
    t.chunks.push_back(allocate(arena, {rows, shape[1]}, dtype, what + " rows " + std::to_string(r) + "+"));
  }
  return t;
}

RowChunkedTensor upload_row_chunked(vk::Device& dev, vk::Arena& arena, const Tensor& t, const std::string& what,
                                    std::uint64_t max_chunk_bytes) {
  Tensor c = t.is_contiguous() ? t : t.clone();
  RowChunkedTensor d = allocate_row_chunked(arena, c.shape(), c.dtype(), what, max_chunk_bytes);
  for (std::size_t i = 0; i < d.chunks.size(); ++i) {
    Tensor rows = c.slice_rows(static_cast<std::int64_t>(i) * d.rows_per_chunk,
                               static_cast<std::int64_t>(i) * d.rows_per_chunk + d.chunks[i].dim(0));
    dev.upload(d.chunks[i].buf, rows.raw(), rows.nbytes());
  }
  return d;
}

Tensor download(vk::Device& dev, const RowChunkedTensor& t) {
  Tensor out = Tensor::zeros(t.shape, t.dtype);
  for (std::size_t i = 0; i < t.chunks.size(); ++i) {
    Tensor rows = out.slice_rows(static_cast<std::int64_t>(i) * t.rows_per_chunk,
                                 static_cast<std::int64_t>(i) * t.rows_per_chunk + t.chunks[i].dim(0));
    dev.download(t.chunks[i].buf, rows.raw(), rows.nbytes());
  }
  return out;
}

void require_f32(const char* op, std::initializer_list<std::pair<const char*, const DeviceTensor*>> operands) {
  for (auto& [name, t] : operands)
    if (t->dtype != DType::F32) throw ShapeError(std::string(op) + ": " + describe(name, *t) + " must be f32");
}

void require_f32_or_f16(const char* op, std::initializer_list<std::pair<const char*, const DeviceTensor*>> operands) {
  for (auto& [name, t] : operands)
    if (t->dtype != DType::F32 && t->dtype != DType::F16)
      throw ShapeError(std::string(op) + ": " + describe(name, *t) + " must be f32 or f16");
}

std::string describe(const std::string& name, const DeviceTensor& t) {
  return name + " " + shape_str(t.shape) + " " + dtype_name(t.dtype);
}

}  // namespace pocketlora::ops
