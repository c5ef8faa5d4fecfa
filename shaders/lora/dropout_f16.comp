#version 450
#extension GL_GOOGLE_include_directive : require
// Each operand f32 or f16, chosen per pipeline (shaders/common/storage.glsl).
#extension GL_EXT_shader_16bit_storage : require
#define PL_STORAGE16 1
#include "dropout.glsl"
