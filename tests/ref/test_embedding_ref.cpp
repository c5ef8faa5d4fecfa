// The embedding reference (host/ref/embedding.h): backward by central differences; runs in CPU-only builds too.
// The GPU kernels are compared with it in tests/ops/test_embedding.cpp.
#include <gtest/gtest.h>

#include <string>

#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ref/eigen_view.h"
#include "host/ref/embedding.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(EmbeddingReference, BackwardMatchesFiniteDifferencesAndRejectsBadIds) {
  Tensor ids = int_tensor({2, 0, 2});
  Tensor R = random_tensor({3, 4}, 5).to(DType::F64);
  auto loss = [&](const std::vector<Tensor>& in) {
    Tensor o = Tensor::zeros({3, 4}, DType::F64);
    ref::embedding(ids, in[0], o);
    return (as_matrix_d(o).array() * as_matrix_d(R).array()).sum();
  };
  auto analytic = [&](const std::vector<Tensor>&) {
    Tensor d = Tensor::zeros({3, 4}, DType::F64);
    ref::embedding_backward(ids, R, d);
    return std::vector<Tensor>{d};
  };
  auto r = gradcheck(loss, analytic, {random_tensor({3, 4}, 6)});
  EXPECT_LT(r.max_abs, 1e-8) << r.worst;
  Tensor out = Tensor::zeros({1, 4});
  try {
    ref::embedding(int_tensor({3}), random_tensor({3, 4}, 1), out);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("token id 3 at position 0"), std::string::npos) << e.what();
  }
}

}  // namespace
