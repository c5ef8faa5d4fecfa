#ifndef PL_SHADERS_COMMON_PROBE_PUSH_H
#define PL_SHADERS_COMMON_PROBE_PUSH_H
#include "shaders/common/host_shared.h"
PL_SHADER_NAMESPACE_BEGIN
// Peak probes for the roofline: `n` vec4 elements to stream, `iters` fma rounds per invocation.
struct ProbePush {
  uint n;
  uint iters;
  float a;
  float b;
};
PL_CHECK_PUSH_SIZE(ProbePush, 16)
PL_SHADER_NAMESPACE_END
#endif
