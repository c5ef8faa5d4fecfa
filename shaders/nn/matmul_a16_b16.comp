#version 450
#extension GL_GOOGLE_include_directive : require
// A and B f16, C f32 (mixed-dtype matmul; f32 accumulation).
#extension GL_EXT_shader_16bit_storage : require
#define A_T float16_t
#define B_T float16_t
#define C_T float
#include "matmul.glsl"
