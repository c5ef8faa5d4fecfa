#version 450
#extension GL_GOOGLE_include_directive : require
// B f16, A and C f32: an f16 weight times f32 activations (the f16 output head).
#extension GL_EXT_shader_16bit_storage : require
#define A_T float
#define B_T float16_t
#define C_T float
#include "matmul.glsl"
