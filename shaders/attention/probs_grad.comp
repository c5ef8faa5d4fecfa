#version 450
#extension GL_GOOGLE_include_directive : require
// f32 storage; probs_grad_f16.comp: f16 operands (shaders/common/storage.glsl).
#include "probs_grad.glsl"
