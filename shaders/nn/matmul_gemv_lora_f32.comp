#version 450
#extension GL_GOOGLE_include_directive : require
#define B_T float
#define USE_SUBGROUP 0
#define WITH_LORA 1
#include "matmul_gemv.glsl"
