// The NF4 codebook (bitsandbytes' NF4 data type, index 0..15), declared once for GLSL and C++.
#ifndef PL_SHADERS_COMMON_NF4_CODEBOOK_H
#define PL_SHADERS_COMMON_NF4_CODEBOOK_H
#define PL_NF4_CODEBOOK_VALUES                                                                                    \
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,                     \
      -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,                  \
      0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0
#ifdef __cplusplus
namespace pocketlora {
constexpr float kNf4Codebook[16] = {PL_NF4_CODEBOOK_VALUES};
}
#else
const float NF4_CODEBOOK[16] = float[16](PL_NF4_CODEBOOK_VALUES);
#endif
#endif
