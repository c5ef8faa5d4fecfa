// The embedding reference (host/ref/embedding.h): ids outside the table are refused naming the id and position;
// runs in CPU-only builds too. The GPU kernels are compared with it, and its backward with finite differences, as
// op cases in tests/ops/test_embedding.cpp.
#include <gtest/gtest.h>

#include <string>

#include "common/error_message.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ref/embedding.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(EmbeddingReference, RejectsBadIds) {
  Tensor out = Tensor::zeros({1, 4});
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { ref::embedding(int_tensor({3}), random_tensor({3, 4}, 1), out); }),
                       {"token id 3 at position 0"}));
}

}  // namespace
