#version 450
#extension GL_GOOGLE_include_directive : require
// f32 storage; colmat_f16.comp: f16 operands (shaders/common/storage.glsl).
#include "colmat.glsl"
