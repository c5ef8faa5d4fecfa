#version 450
#extension GL_GOOGLE_include_directive : require
// f16 storage, f32 accumulation: only 16-bit *storage* is required, not f16 arithmetic.
#extension GL_EXT_shader_16bit_storage : require
#define A_T float16_t
#define B_T float16_t
#define C_T float16_t
#include "matmul.glsl"
