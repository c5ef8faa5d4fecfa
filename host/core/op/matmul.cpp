#include "host/core/op/matmul.h"

#include <initializer_list>
#include <type_traits>

#include "host/core/error.h"

namespace pocketlora {

std::array<std::int64_t, 3> check_matmul_shapes(const char* op, const Shape& a, const Shape& b, const Shape& c,
                                                const MatmulOptions& opt) {
  auto fail = [&](const std::string& why) {
    throw ShapeError(std::string(op) + ": " + why + " (A " + shape_str(a) + (opt.trans_a ? " transposed" : "") +
                     ", B " + shape_str(b) + (opt.trans_b ? " transposed" : "") + ", C " + shape_str(c) +
                     "; expected op(A) [M,K], op(B) [N,K], C [M,N])");
  };
  if (a.size() != 2 || b.size() != 2 || c.size() != 2) fail("all operands must be 2-D");
  const std::int64_t M = opt.trans_a ? a[1] : a[0], Ka = opt.trans_a ? a[0] : a[1];
  const std::int64_t N = opt.trans_b ? b[1] : b[0], Kb = opt.trans_b ? b[0] : b[1];
  if (Ka != Kb) fail("K of A (" + std::to_string(Ka) + ") != K of B (" + std::to_string(Kb) + ")");
  if (c[0] != M || c[1] != N) fail("C must be [M,N]");
  return {M, N, Ka};
}

}  // namespace pocketlora
