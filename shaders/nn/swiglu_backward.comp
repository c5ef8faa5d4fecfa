#version 450
#extension GL_GOOGLE_include_directive : require
// f32 storage; swiglu_backward_f16.comp: f16 operands (shaders/common/storage.glsl).
#include "swiglu_backward.glsl"
