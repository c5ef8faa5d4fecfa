#pragma once
// An independent host Llama forward in f64 (no Backend, no host/ref kernels), the yardstick of the decoder tests:
// plain f32 base weights read as f64, optional LoRA deltas merged as W + s·B·A in f64, interleaved-pair RoPE with
// angles from the config's inverse frequencies, causal GQA attention, SwiGLU, the tied or untied head.
#include <cstdint>
#include <functional>
#include <vector>

#include "host/model/llama_model.h"
#include "host/train/lora_adapter.h"

namespace pocketlora::test {

struct HostLoraDelta {
  const LoraAdapter* adapter = nullptr;
  double scale = 1.0;  // times the adapter's own alpha / r
  // Where set, each module's own alpha / r as the test computes it (PEFT's per-module patterns), instead of the
  // adapter config's one scale.
  std::function<double(std::int64_t layer, LoraTarget t)> module_scale;
};

// Logits [T][vocab] of `tokens` at positions 0..T-1. The model must have a plain (f32) base and interleaved q/k rows.
std::vector<std::vector<double>> host_llama_logits_f64(const LlamaModel& m, const std::vector<std::int32_t>& tokens,
                                                       const std::vector<HostLoraDelta>& deltas = {});

}  // namespace pocketlora::test
