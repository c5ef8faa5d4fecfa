#include "host/core/tensor.h"

#include <cstring>

#include "host/core/checked_size.h"
#include "host/core/error.h"
#include "host/core/half.h"
#include "host/core/parallel_threshold.h"

namespace pocketlora {

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::F64: return 8;
    case DType::I8: return 1;
    case DType::U8: return 1;
    case DType::I32: return 4;
    case DType::I64: return 8;
  }
  throw InvalidArgument("unknown dtype " + std::to_string(static_cast<int>(t)));
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::F64: return "f64";
    case DType::I8: return "i8";
    case DType::U8: return "u8";
    case DType::I32: return "i32";
    case DType::I64: return "i64";
  }
  return "?";
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

std::int64_t shape_numel(const Shape& s) {
  return checked_numel<ShapeError>(s, [&] { return "shape " + shape_str(s); });
}

std::size_t shape_nbytes(const Shape& s, DType t) {
  return checked_nbytes<ShapeError>(shape_numel(s), dtype_size(t),
                                    [&] { return std::string("tensor ") + shape_str(s) + " of " + dtype_name(t); });
}

namespace {
// Callers have validated the shape with shape_nbytes/shape_numel, so the running product cannot overflow.
Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  std::int64_t acc = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}
}  // namespace

Tensor Tensor::zeros(Shape shape, DType dtype) {
  Tensor t;
  const std::size_t bytes = shape_nbytes(shape, dtype);
  // 64-byte alignment keeps SIMD paths (Eigen, OpenBLAS, the NF4 decoders) and GPU staging copies happy.
  auto* p = static_cast<std::byte*>(::operator new[](bytes ? bytes : 1, std::align_val_t{64}));
  std::memset(p, 0, bytes);
  t.storage_ = std::shared_ptr<const void>(p, [](const void* q) {
    ::operator delete[](const_cast<void*>(q), std::align_val_t{64});
  });
  t.data_ = p;
  t.strides_ = contiguous_strides(shape);
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::view(void* data, Shape shape, DType dtype, std::shared_ptr<const void> keep_alive) {
  shape_nbytes(shape, dtype);  // a view's shape must describe a byte range that exists
  Tensor t;
  t.storage_ = std::move(keep_alive);
  t.data_ = static_cast<std::byte*>(data);
  t.strides_ = contiguous_strides(shape);
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& v, Shape shape) {
  if (shape_numel(shape) != static_cast<std::int64_t>(v.size()))
    throw ShapeError("from_vector: " + std::to_string(v.size()) + " values do not fill shape " + shape_str(shape));
  Tensor t = zeros(std::move(shape), DType::F32);
  std::memcpy(t.data_, v.data(), v.size() * sizeof(float));
  return t;
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

void Tensor::check_dtype(DType want, const char* what) const {
  if (dtype_ != want)
    throw ShapeError(std::string(what) + ": tensor is " + dtype_name(dtype_) + ", expected " + dtype_name(want));
}

Tensor Tensor::reshape(Shape shape) const {
  if (!is_contiguous()) throw ShapeError("reshape of a non-contiguous tensor " + shape_str(shape_));
  if (shape_numel(shape) != numel())
    throw ShapeError("reshape " + shape_str(shape_) + " -> " + shape_str(shape) + ": element counts differ");
  Tensor t = *this;
  t.strides_ = contiguous_strides(shape);
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::slice_rows(std::int64_t begin, std::int64_t end) const {
  if (rank() < 1 || begin < 0 || end < begin || end > shape_[0])
    throw ShapeError("slice_rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") of " + shape_str(shape_));
  Tensor t = *this;
  t.data_ = data_ + static_cast<std::size_t>(begin * strides_[0]) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  return t;
}

namespace {
double load_as_double(const std::byte* p, DType t) {
  switch (t) {
    case DType::F32: { float v; std::memcpy(&v, p, 4); return v; }
    case DType::F64: { double v; std::memcpy(&v, p, 8); return v; }
    case DType::F16: { std::uint16_t v; std::memcpy(&v, p, 2); return half_to_float(v); }
    case DType::BF16: { std::uint16_t v; std::memcpy(&v, p, 2); return bf16_to_float(v); }
    case DType::I8: return static_cast<double>(*reinterpret_cast<const std::int8_t*>(p));
    case DType::U8: return static_cast<double>(*reinterpret_cast<const std::uint8_t*>(p));
    case DType::I32: { std::int32_t v; std::memcpy(&v, p, 4); return v; }
    case DType::I64: { std::int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
  }
  return 0;
}
void store_from_double(std::byte* p, DType t, double x) {
  switch (t) {
    case DType::F32: { float v = static_cast<float>(x); std::memcpy(p, &v, 4); return; }
    case DType::F64: std::memcpy(p, &x, 8); return;
    case DType::F16: { std::uint16_t v = float_to_half(static_cast<float>(x)); std::memcpy(p, &v, 2); return; }
    case DType::BF16: { std::uint16_t v = float_to_bf16(static_cast<float>(x)); std::memcpy(p, &v, 2); return; }
    case DType::I8: *reinterpret_cast<std::int8_t*>(p) = static_cast<std::int8_t>(x); return;
    case DType::U8: *reinterpret_cast<std::uint8_t*>(p) = static_cast<std::uint8_t>(x); return;
    case DType::I32: { std::int32_t v = static_cast<std::int32_t>(x); std::memcpy(p, &v, 4); return; }
    case DType::I64: { std::int64_t v = static_cast<std::int64_t>(x); std::memcpy(p, &v, 8); return; }
  }
}
}  // namespace

Tensor Tensor::to(DType dtype) const {
  Tensor out = zeros(shape_, dtype);
  const std::int64_t n = numel();
  if (n == 0) return out;
  if (dtype == dtype_ && is_contiguous()) {
    std::memcpy(out.data_, data_, nbytes());
    return out;
  }
  const std::size_t in_sz = dtype_size(dtype_), out_sz = dtype_size(dtype);
  if (is_contiguous()) {  // every tensor today; the indexed walk below is for strided ones
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
    for (std::int64_t i = 0; i < n; ++i)
      store_from_double(out.data_ + static_cast<std::size_t>(i) * out_sz, dtype,
                        load_as_double(data_ + static_cast<std::size_t>(i) * in_sz, dtype_));
    return out;
  }
  std::vector<std::int64_t> idx(shape_.size(), 0);
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t off = 0;
    for (std::size_t d = 0; d < idx.size(); ++d) off += idx[d] * strides_[d];
    store_from_double(out.data_ + static_cast<std::size_t>(i) * out_sz, dtype,
                      load_as_double(data_ + static_cast<std::size_t>(off) * in_sz, dtype_));
    for (std::size_t d = idx.size(); d-- > 0;) {
      if (++idx[d] < shape_[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

void Tensor::copy_from(const Tensor& src) {
  if (src.numel() != numel() || !is_contiguous())
    throw ShapeError("copy_from: source " + shape_str(src.shape()) + " into " + shape_str(shape_) +
                     (is_contiguous() ? "" : " (non-contiguous destination)"));
  // Straight into this storage: a temporary the size of the source (an embedding table written into a backend)
  // would double the host peak of an upload.
  const std::int64_t n = numel();
  if (n == 0) return;
  if (!src.is_contiguous()) {
    Tensor c = src.to(dtype_);
    std::memcpy(data_, c.raw(), c.nbytes());
    return;
  }
  if (src.dtype_ == dtype_) {
    std::memcpy(data_, src.data_, nbytes());
    return;
  }
  const std::size_t in_sz = dtype_size(src.dtype_), out_sz = dtype_size(dtype_);
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
  for (std::int64_t i = 0; i < n; ++i)
    store_from_double(data_ + static_cast<std::size_t>(i) * out_sz, dtype_,
                      load_as_double(src.data_ + static_cast<std::size_t>(i) * in_sz, src.dtype_));
}

std::vector<float> Tensor::to_float_vector() const {
  Tensor f = to(DType::F32);
  const float* p = f.data<float>();
  return std::vector<float>(p, p + f.numel());
}

}  // namespace pocketlora
