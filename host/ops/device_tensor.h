#pragma once
// A tensor living in device memory: a bound range plus shape and dtype. GPU ops take these; the CPU reference
// takes host/ref Tensor with the same shapes, so tests can run an op both ways.
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <string>
#include <vector>

#include "host/core/tensor.h"
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
// What an arena of `dev` hands out for a `bytes` allocation (rounded to the device's offset alignment; an empty
// tensor still binds 4 bytes), for planning scratch before it is allocated.
std::uint64_t arena_bytes(const vk::Device& dev, std::uint64_t bytes);
DeviceTensor upload(vk::Device& dev, vk::Arena& arena, const Tensor& t, const std::string& what);
Tensor download(vk::Device& dev, const DeviceTensor& t);

// A 2-D tensor too large for one storage binding (maxStorageBufferRange: 128 MiB on lavapipe, similar on
// phones), e.g. a 128256 x 2048 f16 embedding: split by rows into chunks that each fit one binding. Ops that
// take such tensors (embedding lookup, vocabulary-chunked output projection) dispatch once per chunk.
struct RowChunkedTensor {
  Shape shape;  // full [rows, cols]
  DType dtype = DType::F32;
  std::int64_t rows_per_chunk = 0;
  std::vector<DeviceTensor> chunks;  // chunk i holds rows [i * rows_per_chunk, ...)
};

// Chooses rows_per_chunk from the device's binding limit (and `max_chunk_bytes` when non-zero).
RowChunkedTensor allocate_row_chunked(vk::Arena& arena, Shape shape, DType dtype, const std::string& what,
                                      std::uint64_t max_chunk_bytes = 0);
RowChunkedTensor upload_row_chunked(vk::Device& dev, vk::Arena& arena, const Tensor& t, const std::string& what,
                                    std::uint64_t max_chunk_bytes = 0);
Tensor download(vk::Device& dev, const RowChunkedTensor& t);

// "op: name [2, 3] f32" — for error messages.
std::string describe(const std::string& name, const DeviceTensor& t);

// Throws ShapeError "<op>: <name> [shape] <dtype> must be f32" for the first operand that is not f32.
void require_f32(const char* op, std::initializer_list<std::pair<const char*, const DeviceTensor*>> operands);
// The same for operands stored as f32 or f16 ("... must be f32 or f16").
void require_f32_or_f16(const char* op, std::initializer_list<std::pair<const char*, const DeviceTensor*>> operands);

}  // namespace pocketlora::ops
