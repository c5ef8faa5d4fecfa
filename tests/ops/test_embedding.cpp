#if POCKETLORA_HAS_VULKAN  // (not yet ported to op cases: tests/harness/op_case.h)
// Embedding lookup / backward over a row-chunked table: GPU vs reference; repeated ids accumulate.
#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ops/embedding.h"
#include "host/ref/embedding.h"
#include "runtime/command.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST_F(GpuTest, EmbeddingForwardBackwardAcrossChunks) {
  const std::int64_t V = 37, D = 20;
  Tensor table = random_tensor({V, D}, 1), ids = int_tensor({0, 36, 5, 5, 12, 24, 5, 11, 13});
  Tensor dout = random_tensor({ids.numel(), D}, 2), dtab0 = random_tensor({V, D}, 3);
  Tensor out = Tensor::zeros({ids.numel(), D}), dtab = dtab0.clone();
  ref::embedding(ids, table, out);
  ref::embedding_backward(ids, dout, dtab);
  // 1000-byte chunks: 12 rows each, so the ids land in 4 different bindings.
  for (std::uint64_t chunk : {1000ull, 0ull}) {
    auto gt = ops::upload_row_chunked(dev(), arena(), table, "table", chunk);
    auto gdt = ops::upload_row_chunked(dev(), arena(), dtab0, "dtable", chunk);
    auto gi = up(ids), gout = up(Tensor::zeros({ids.numel(), D})), gdo = up(dout);
    vk::Sequence seq(dev());
    ops::embedding(seq, gi, gt, gout);
    ops::embedding_backward(seq, gi, gdo, gdt);
    seq.submit();
    Tolerance exact;
    exact.max_abs = 0;  // a copy
    EXPECT_TRUE(within(down(gout), out, exact)) << "chunk " << chunk;
    Tolerance acc;  // id 5 appears three times: three f32 adds in token order on both sides
    acc.max_abs = 1e-6;
    EXPECT_TRUE(within(ops::download(dev(), gdt), dtab, acc)) << "chunk " << chunk;
  }
}

}  // namespace
#endif  // POCKETLORA_HAS_VULKAN
