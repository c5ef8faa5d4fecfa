#version 450
#extension GL_GOOGLE_include_directive : require
#define TABLE_T float
#include "embedding.glsl"
