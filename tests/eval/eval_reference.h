#pragma once
// The independent scoring path of the eval tests: llama_forward_logits' logits of one sequence, log-softmax in
// f64 here (not the engine, not the cross-entropy op).
#include <cmath>
#include <cstdint>
#include <vector>

#include "host/model/llama_forward.h"

namespace pocketlora::test {

// -log p(ids[t] | ids[..t]) for t = first .. size-1.
inline std::vector<double> reference_nll(Backend& be, const BackendLlama& w, const std::vector<std::int32_t>& ids,
                                         std::size_t first) {
  const Tensor logits = llama_forward_logits(be, w, ids);
  const std::int64_t vocab = logits.dim(1);
  std::vector<double> out;
  for (std::size_t t = first; t < ids.size(); ++t) {
    const float* row = logits.data<float>() + static_cast<std::int64_t>(t - 1) * vocab;
    double mx = -INFINITY, z = 0;
    for (std::int64_t v = 0; v < vocab; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    for (std::int64_t v = 0; v < vocab; ++v) z += std::exp(static_cast<double>(row[v]) - mx);
    out.push_back(mx + std::log(z) - row[ids[t]]);
  }
  return out;
}

}  // namespace pocketlora::test
