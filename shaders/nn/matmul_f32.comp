#version 450
#extension GL_GOOGLE_include_directive : require
#define A_T float
#define B_T float
#define C_T float
#include "matmul.glsl"
