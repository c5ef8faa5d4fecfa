#version 450
#extension GL_GOOGLE_include_directive : require
// C f16, A and B f32 (mixed-dtype matmul; f32 accumulation, one rounding into C).
#extension GL_EXT_shader_16bit_storage : require
#define A_T float
#define B_T float
#define C_T float16_t
#include "matmul.glsl"
