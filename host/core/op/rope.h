#pragma once
// Rotary position embeddings. Frequencies are computed in double on the host (HF semantics, including
// Llama 3 "rope_type: llama3" scaling) and turned into a (cos, sin) table [positions, head_dim/2] that the CPU
// reference and the GPU kernel both read, so both rotate by bit-identical factors.
#include <optional>
#include <vector>

#include "host/core/tensor.h"

namespace pocketlora {

struct Llama3RopeScaling {
  double factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  double original_max_position_embeddings = 8192;
};

enum class RopeLayout { Interleaved /* (2i, 2i+1): llama2.c, GGUF */, RotateHalf /* (i, i + d/2): HF */ };

// inv_freq[i] = theta^(-2i/d), then Llama 3 scaling as transformers' _compute_llama3_parameters.
std::vector<double> rope_inv_freq(std::int64_t head_dim, double theta,
                                  const std::optional<Llama3RopeScaling>& scaling = std::nullopt);
// f32 [positions, head_dim/2, 2] = (cos(p * f_i), sin(p * f_i)) computed in double, rounded once.
Tensor rope_table(std::int64_t positions, const std::vector<double>& inv_freq);

void check_rope_shapes(const char* op, const Shape& x, const Shape& positions, const Shape& table);

}  // namespace pocketlora
