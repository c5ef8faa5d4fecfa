#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#define B_T float
#define USE_SUBGROUP 1
#define WITH_LORA 1
#define LORA_T_LANES 1
#include "matmul_gemv.glsl"
