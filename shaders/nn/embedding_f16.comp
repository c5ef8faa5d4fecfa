#version 450
#extension GL_GOOGLE_include_directive : require
// An f16 table (the frozen embedding of a large vocabulary, half the bytes) read into f32 rows: 16-bit storage only.
#extension GL_EXT_shader_16bit_storage : require
#define TABLE_T float16_t
#include "embedding.glsl"
