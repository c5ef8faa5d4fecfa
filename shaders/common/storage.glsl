// Operands stored as f32 or f16 with f32 arithmetic. A kernel's f16 variant (a .comp that enables
// GL_EXT_shader_16bit_storage and defines PL_STORAGE16 before including the kernel body) declares each operand
// twice on the same binding, once as float[] and once as float16_t[], and picks one per operand by a boolean
// specialization constant: so each of a kernel's operands is f32 or f16 independently (the residual stream f32,
// a projection output f16) from two SPIR-V modules, and the choice is folded when the pipeline is built. The f32
// variant needs no 16-bit storage feature, so devices without it still run every kernel.
//
// PL_TENSOR(binding, spec_id, qualifier, name): declares the operand and `const bool name_f16` (constant spec_id;
// the host passes 1 for f16). PL_LD(name, i) reads element i as float; PL_ST(name, i, v) stores float v.
#ifndef PL_SHADERS_COMMON_STORAGE_GLSL
#define PL_SHADERS_COMMON_STORAGE_GLSL
#ifdef PL_STORAGE16
#define PL_TENSOR(b, id, qual, name)                                                   \
  layout(constant_id = id) const bool name##_f16 = false;                              \
  layout(set = 0, binding = b) qual buffer name##_Buf32 { float name##_32[]; };        \
  layout(set = 0, binding = b) qual buffer name##_Buf16 { float16_t name##_16[]; };
#define PL_LD(name, i) (name##_f16 ? float(name##_16[i]) : name##_32[i])
#define PL_ST(name, i, v)                 \
  if (name##_f16) {                       \
    name##_16[i] = float16_t(v);          \
  } else {                                \
    name##_32[i] = (v);                   \
  }
#else
#define PL_TENSOR(b, id, qual, name)                         \
  layout(constant_id = id) const bool name##_f16 = false;    \
  layout(set = 0, binding = b) qual buffer name##_Buf32 { float name##_32[]; };
#define PL_LD(name, i) (name##_32[i])
#define PL_ST(name, i, v) name##_32[i] = (v);
#endif
#endif
