#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// B f16 (an f16 weight or output head), A and C f32.
#extension GL_EXT_shader_16bit_storage : require
#define B_T float16_t
#define USE_SUBGROUP 1
#define WITH_LORA 1
#define LORA_T_LANES 1
#include "matmul_gemv.glsl"
