#version 450
#extension GL_GOOGLE_include_directive : require

#define X_T float
#define Y_T float
#include "matmul_shared.glsl"
