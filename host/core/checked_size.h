#pragma once
// Overflow-checked arithmetic for sizes and offsets derived from numbers read from a file (shapes, counts,
// lengths, offsets). A hostile header can make `numel * element_size` wrap around 2^64 to a small, plausible
// byte count; every such product, sum and narrowing goes through these helpers instead. Failures throw `E`
// (FormatError by default) whose message names `what` (file + tensor/field) and the operands. `what` is a
// string or a callable returning one (built only on failure, for hot paths).
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "host/core/error.h"

namespace pocketlora {

namespace checked_detail {
template <typename W> std::string describe(const W& what) {
  if constexpr (std::is_invocable_v<const W&>) return std::string(what());
  else return std::string(what);
}
}  // namespace checked_detail

template <typename E = FormatError, typename T, typename W>
T checked_mul(T a, T b, const W& what) {
  static_assert(std::is_integral_v<T>);
  T r;
  if (__builtin_mul_overflow(a, b, &r))
    throw E(checked_detail::describe(what) + ": size overflow: " + std::to_string(a) + " * " + std::to_string(b) +
            " does not fit in " + std::to_string(sizeof(T) * 8) + " bits");
  return r;
}

template <typename E = FormatError, typename T, typename W>
T checked_add(T a, T b, const W& what) {
  static_assert(std::is_integral_v<T>);
  T r;
  if (__builtin_add_overflow(a, b, &r))
    throw E(checked_detail::describe(what) + ": size overflow: " + std::to_string(a) + " + " + std::to_string(b) +
            " does not fit in " + std::to_string(sizeof(T) * 8) + " bits");
  return r;
}

// Converts between integer types, failing (instead of wrapping or changing sign) when `v` does not fit.
template <typename To, typename E = FormatError, typename From, typename W>
To checked_narrow(From v, const W& what) {
  static_assert(std::is_integral_v<To> && std::is_integral_v<From>);
  if (!std::in_range<To>(v))
    throw E(checked_detail::describe(what) + ": value " + std::to_string(v) + " is outside [" +
            std::to_string(std::numeric_limits<To>::min()) + ", " + std::to_string(std::numeric_limits<To>::max()) +
            "]");
  return static_cast<To>(v);
}

// Element count of a shape: negative dimensions and products past int64 are errors (a zero dim gives 0).
template <typename E = FormatError, typename W>
std::int64_t checked_numel(std::span<const std::int64_t> dims, const W& what) {
  std::int64_t n = 1;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < 0)
      throw E(checked_detail::describe(what) + ": dimension " + std::to_string(i) + " is negative (" +
              std::to_string(dims[i]) + ")");
    n = checked_mul<E>(n, dims[i], what);
  }
  return n;
}

// Bytes of `numel` elements of `elem_size` bytes each.
template <typename E = FormatError, typename W>
std::size_t checked_nbytes(std::int64_t numel, std::size_t elem_size, const W& what) {
  return checked_mul<E>(checked_narrow<std::size_t, E>(numel, what), elem_size, what);
}

}  // namespace pocketlora
