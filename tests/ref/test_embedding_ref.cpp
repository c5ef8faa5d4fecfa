// The embedding reference (host/ref/embedding.h): ids outside the table are refused naming the id and position;
// runs in CPU-only builds too. The GPU kernels are compared with it, and its backward with finite differences, as
// op cases in tests/ops/test_embedding.cpp.
#include <gtest/gtest.h>

#include <string>
#include <vector>

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

TEST(EmbeddingReference, F16TableGivesItsRowsInF32Exactly) {
  // The trainer's f16 table of a large vocabulary: each looked-up row is the f16 values widened (exact), row by row.
  const Tensor table = random_tensor({9, 5}, 2, -1, 1, DType::F16), wide = table.to(DType::F32);
  const std::vector<std::int32_t> ids{8, 0, 3, 3};
  Tensor out = Tensor::zeros({4, 5});
  ref::embedding(int_tensor(ids), table, out);
  for (std::size_t t = 0; t < ids.size(); ++t)
    for (std::int64_t d = 0; d < 5; ++d)
      EXPECT_EQ(out.data<float>()[static_cast<std::int64_t>(t) * 5 + d], wide.data<float>()[ids[t] * 5 + d])
          << "token " << t << " column " << d;
}

}  // namespace
