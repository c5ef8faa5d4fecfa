#version 450
#extension GL_GOOGLE_include_directive : require
// B and C f16, A f32 (mixed-dtype matmul; f32 accumulation).
#extension GL_EXT_shader_16bit_storage : require
#define A_T float
#define B_T float16_t
#define C_T float16_t
#include "matmul.glsl"
