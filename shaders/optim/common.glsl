// Gradient statistics binding shared by the optimizer kernels: the clip scale multiplies the gradient, and
// the skip flag turns the whole step into a no-op (NaN/Inf anywhere in the gradients).
layout(set = 0, binding = 0) readonly buffer Stats { uint grad_stats[]; };
bool step_skipped() { return grad_stats[GRAD_STATS_SKIP] != 0u; }
float clip_scale() { return uintBitsToFloat(grad_stats[GRAD_STATS_CLIP_SCALE]); }
