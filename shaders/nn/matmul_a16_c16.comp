#version 450
#extension GL_GOOGLE_include_directive : require
// A and C f16, B f32 (mixed-dtype matmul; f32 accumulation).
#extension GL_EXT_shader_16bit_storage : require
#define A_T float16_t
#define B_T float
#define C_T float16_t
#include "matmul.glsl"
