#pragma once
// Small CPU tensor: shape, strides (in elements), dtype, owning or view. The reference kernels and the file
// loaders speak this type; GPU code has its own (host/ops/device_tensor.h) so host/ref never sees Vulkan.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace pocketlora {

enum class DType : std::uint8_t { F32, F16, BF16, F64, I8, U8, I32, I64 };

std::size_t dtype_size(DType t);
const char* dtype_name(DType t);

using Shape = std::vector<std::int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3]"
// Element count; a negative dimension or a product past int64 is a ShapeError naming the shape.
std::int64_t shape_numel(const Shape& s);
// Bytes of a contiguous tensor of that shape and dtype; overflow of size_t is a ShapeError.
std::size_t shape_nbytes(const Shape& s, DType t);


class Tensor {
 public:
  Tensor() = default;
  // Owning, contiguous, zero-filled.
  static Tensor zeros(Shape shape, DType dtype = DType::F32);
  // Non-owning view of caller memory (contiguous). `keep_alive` may hold the owner (e.g. a MappedFile).
  static Tensor view(void* data, Shape shape, DType dtype, std::shared_ptr<const void> keep_alive = {});
  static Tensor from_vector(const std::vector<float>& v, Shape shape);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  std::int64_t dim(int i) const { return shape_.at(static_cast<std::size_t>(i < 0 ? i + rank() : i)); }
  int rank() const { return static_cast<int>(shape_.size()); }
  std::int64_t numel() const { return shape_numel(shape_); }
  std::size_t nbytes() const { return shape_nbytes(shape_, dtype_); }
  bool is_contiguous() const;
  bool defined() const { return data_ != nullptr || numel() == 0; }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <typename T> T* data();
  template <typename T> const T* data() const;

  // Same storage, new contiguous shape with the same element count.
  Tensor reshape(Shape shape) const;
  // Rows [begin, end) of the first dimension (a view).
  Tensor slice_rows(std::int64_t begin, std::int64_t end) const;
  // Deep copy into a new contiguous tensor, converting dtype (f32/f16/bf16/f64 among each other).
  Tensor to(DType dtype) const;
  Tensor clone() const { return to(dtype_); }
  // Writes src's values into this tensor's own storage (converting dtype); shapes must have equal numel.
  void copy_from(const Tensor& src);


  std::vector<float> to_float_vector() const;

 private:
  void check_dtype(DType want, const char* what) const;
  Shape shape_, strides_;
  DType dtype_ = DType::F32;
  std::shared_ptr<const void> storage_;
  std::byte* data_ = nullptr;
};

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::F32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::F64; };
template <> struct DTypeOf<std::int8_t> { static constexpr DType value = DType::I8; };
template <> struct DTypeOf<std::uint8_t> { static constexpr DType value = DType::U8; };
template <> struct DTypeOf<std::int32_t> { static constexpr DType value = DType::I32; };
template <> struct DTypeOf<std::int64_t> { static constexpr DType value = DType::I64; };
// f16 / bf16 are accessed as raw uint16 bits; see host/core/half.h.
template <> struct DTypeOf<std::uint16_t> { static constexpr DType value = DType::F16; };

template <typename T> T* Tensor::data() {
  if constexpr (std::is_same_v<T, std::uint16_t>) {
    if (dtype_ != DType::F16 && dtype_ != DType::BF16) check_dtype(DType::F16, "data<uint16_t>");
  } else {
    check_dtype(DTypeOf<T>::value, "data<T>");
  }
  return reinterpret_cast<T*>(data_);
}
template <typename T> const T* Tensor::data() const { return const_cast<Tensor*>(this)->data<T>(); }

}  // namespace pocketlora
