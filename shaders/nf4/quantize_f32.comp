#version 450
#extension GL_GOOGLE_include_directive : require

#define X_T float
#include "quantize.glsl"
