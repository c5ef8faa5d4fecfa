// Bindings shared by the optimizer kernels: the gradient statistics (the clip scale multiplies the gradient, the
// skip flag turns the whole step into a no-op: NaN/Inf anywhere in the gradients) and the step constants the host
// writes before each run (scheduled lr, bias corrections, beta2_t: not push constants, so a recorded step replays).
layout(set = 0, binding = 0) readonly buffer Stats { uint grad_stats[]; };
layout(set = 0, binding = 1) readonly buffer StepConst { float step_const[]; };
bool step_skipped() { return grad_stats[GRAD_STATS_SKIP] != 0u; }
float clip_scale() { return uintBitsToFloat(grad_stats[GRAD_STATS_CLIP_SCALE]); }
float lr() { return step_const[STEP_CONST_LR]; }
