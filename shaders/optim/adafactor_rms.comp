#version 450
#extension GL_GOOGLE_include_directive : require
// Adafactor pass 3 (one invocation): mean(R), then sum over the matrix of u^2 in row order -> scratch
// (mean(R), rms(u)). Sequential on purpose: deterministic, and the matrices are LoRA-sized. Where the device caps
// loop iterations the host runs it over row ranges, one dispatch each, carrying the running sum in scratch[1]
// (the same sum as one pass).
layout(local_size_x = 1) in;
#include "shaders/common/optim_push.h"
layout(push_constant) uniform Push { OptimPush p; };
#include "common.glsl"
layout(set = 0, binding = 2) readonly buffer G { float grad[]; };
layout(set = 0, binding = 3) readonly buffer R { float row_stat[]; };
layout(set = 0, binding = 4) readonly buffer C { float col_stat[]; };
layout(set = 0, binding = 5) buffer S { float scratch[]; };
#include "adafactor_common.glsl"

void main() {
  if (step_skipped()) return;
  const bool first = (p.flags & ADAFACTOR_RMS_FIRST) != 0u;
  float row_mean = scratch[0];
  if (first) {
    float rs = 0.0;
    for (uint r = 0u; r < p.rows; ++r) rs += row_stat[r];
    row_mean = rs / float(p.rows);
  }
  const float cs = clip_scale();
  float ss = first ? 0.0 : scratch[1];
  for (uint r = p.row_begin; r < p.row_end; ++r)
    for (uint c = 0u; c < p.cols; ++c) {
      const float u = adafactor_u(r, c, row_mean, cs);
      ss += u * u;
    }
  scratch[0] = row_mean;
  scratch[1] = (p.flags & ADAFACTOR_RMS_LAST) != 0u ? sqrt(ss / float(p.rows * p.cols)) : ss;
}
