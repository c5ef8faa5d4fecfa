// Included by GLSL shaders and by C++: push-constant structs are written once, in the subset both languages
// share (structs of 32-bit uint/int/float scalars, which have identical std430 and C layouts).
#ifndef PL_SHADERS_COMMON_HOST_SHARED_H
#define PL_SHADERS_COMMON_HOST_SHARED_H
#ifdef __cplusplus
#include <cstdint>
#define PL_SHADER_NAMESPACE_BEGIN namespace pocketlora::shader { using uint = std::uint32_t;
#define PL_SHADER_NAMESPACE_END }
#define PL_CHECK_PUSH_SIZE(T, n)                                                     \
  static_assert(sizeof(T) == (n), #T ": C++ size must match the GLSL std430 layout"); \
  static_assert(sizeof(T) <= 128, #T ": push constants above 128 bytes are not portable");
#else
#define PL_SHADER_NAMESPACE_BEGIN
#define PL_SHADER_NAMESPACE_END
#define PL_CHECK_PUSH_SIZE(T, n)
#endif
#endif
