#version 450
#extension GL_GOOGLE_include_directive : require
#define IN_T float
#define OUT_T float
#include "matmul.glsl"
