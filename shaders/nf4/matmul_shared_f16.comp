#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#define X_T float16_t
#define Y_T float16_t
#include "matmul_shared.glsl"
