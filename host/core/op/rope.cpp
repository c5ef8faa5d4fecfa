#include "host/core/op/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "host/core/error.h"

namespace pocketlora {

std::vector<double> rope_inv_freq(std::int64_t head_dim, double theta, const std::optional<Llama3RopeScaling>& sc) {
  if (head_dim <= 0 || head_dim % 2 != 0 || theta <= 0)
    throw InvalidArgument("rope_inv_freq: head_dim " + std::to_string(head_dim) + " must be even and positive, theta " +
                          std::to_string(theta) + " positive");
  std::vector<double> f(static_cast<std::size_t>(head_dim / 2));
  for (std::size_t i = 0; i < f.size(); ++i)
    f[i] = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(head_dim));
  if (!sc) return f;
  const double low_wavelen = sc->original_max_position_embeddings / sc->low_freq_factor;
  const double high_wavelen = sc->original_max_position_embeddings / sc->high_freq_factor;
  for (auto& x : f) {
    const double wavelen = 2.0 * std::numbers::pi / x;
    if (wavelen > low_wavelen) {
      x = x / sc->factor;  // low frequencies: scaled fully
    } else if (!(wavelen < high_wavelen)) {  // medium: smooth interpolation between scaled and unscaled
      const double smooth = (sc->original_max_position_embeddings / wavelen - sc->low_freq_factor) /
                            (sc->high_freq_factor - sc->low_freq_factor);
      x = (1.0 - smooth) * x / sc->factor + smooth * x;
    }
  }
  return f;
}

Tensor rope_table(std::int64_t positions, const std::vector<double>& inv_freq) {
  const auto half = static_cast<std::int64_t>(inv_freq.size());
  Tensor t = Tensor::zeros({positions, half, 2});
  float* p = t.data<float>();
  for (std::int64_t pos = 0; pos < positions; ++pos)
    for (std::int64_t i = 0; i < half; ++i) {
      const double a = static_cast<double>(pos) * inv_freq[static_cast<std::size_t>(i)];
      p[(pos * half + i) * 2] = static_cast<float>(std::cos(a));
      p[(pos * half + i) * 2 + 1] = static_cast<float>(std::sin(a));
    }
  return t;
}

void check_rope_shapes(const char* op, const Shape& x, const Shape& positions, const Shape& table) {
  if (x.size() != 3 || x[2] % 2 != 0 || x[2] == 0 || positions.size() != 1 || positions[0] != x[0] ||
      table.size() != 3 || table[1] * 2 != x[2] || table[2] != 2 || table[0] == 0)
    throw ShapeError(std::string(op) + ": x " + shape_str(x) + ", positions " + shape_str(positions) + ", table " +
                     shape_str(table) + " — expected x [T, heads, D] with even D, positions [T], table [P, D/2, 2]");
}

}  // namespace pocketlora
