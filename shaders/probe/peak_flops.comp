#version 450
#extension GL_GOOGLE_include_directive : require
// Peak fp32 FMA throughput: 8 independent fma chains per invocation (enough ILP to hide latency), the result
// stored so the compiler cannot drop the work. FLOPs = invocations * iters * 8 chains * 4 lanes * 2.
layout(local_size_x_id = 0) in;
#include "shaders/common/probe_push.h"
layout(push_constant) uniform Push { ProbePush p; };
layout(set = 0, binding = 0) buffer Out { vec4 sink[]; };

void main() {
  const uint i = gl_GlobalInvocationID.x;
  vec4 v0 = vec4(float(i)) * 1e-7, v1 = v0 + 0.1, v2 = v0 + 0.2, v3 = v0 + 0.3;
  vec4 v4 = v0 + 0.4, v5 = v0 + 0.5, v6 = v0 + 0.6, v7 = v0 + 0.7;
  for (uint k = 0u; k < p.iters; ++k) {
    v0 = fma(v0, vec4(p.a), vec4(p.b)); v1 = fma(v1, vec4(p.a), vec4(p.b));
    v2 = fma(v2, vec4(p.a), vec4(p.b)); v3 = fma(v3, vec4(p.a), vec4(p.b));
    v4 = fma(v4, vec4(p.a), vec4(p.b)); v5 = fma(v5, vec4(p.a), vec4(p.b));
    v6 = fma(v6, vec4(p.a), vec4(p.b)); v7 = fma(v7, vec4(p.a), vec4(p.b));
  }
  sink[i] = v0 + v1 + v2 + v3 + v4 + v5 + v6 + v7;
}
