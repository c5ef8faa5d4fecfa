// The NF4 codebook (bitsandbytes' NF4 data type, index 0..15), declared once for GLSL and C++.
#ifndef PL_SHADERS_COMMON_NF4_CODEBOOK_H
#define PL_SHADERS_COMMON_NF4_CODEBOOK_H
#define PL_NF4_CODEBOOK_VALUES                                                                                    \
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,                     \
      -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,                  \
      0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0
// The 15 decision thresholds of bitsandbytes' CUDA dQuantizeNF4 (csrc/kernels.cu), ascending, as the fp32
// literals it compares against. code(x) = number of thresholds t with x > t — the decision tree written as a
// count; a NaN (0 * inf from an all-zero block) compares false everywhere and gets code 0, as on CUDA.
#define PL_NF4_THRESHOLD_VALUES                                                                                   \
  -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544, -0.23460740596055984,      \
      -0.13791173323988914, -0.045525018125772476, 0.03979014977812767, 0.1202552504837513, 0.2035212516784668,   \
      0.2920137718319893, 0.3893125355243683, 0.5016634166240692, 0.6427869200706482, 0.8614784181118011
#ifdef __cplusplus
namespace pocketlora {
constexpr float kNf4Codebook[16] = {PL_NF4_CODEBOOK_VALUES};
constexpr float kNf4Thresholds[15] = {PL_NF4_THRESHOLD_VALUES};
}
#else
const float NF4_CODEBOOK[16] = float[16](PL_NF4_CODEBOOK_VALUES);
const float NF4_THRESHOLDS[15] = float[15](PL_NF4_THRESHOLD_VALUES);
#endif
#endif
