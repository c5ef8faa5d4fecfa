// Backend::write_rows: a table written a row range at a time (how upload_llama writes a deferred embedding table
// without its whole f32 copy on the host) holds what one write() of the whole table holds, converted to the
// tensor's dtype, on both backends — on Vulkan also when the table is split into several binding chunks and the
// written ranges straddle them; rows that do not fit are a ShapeError naming the tensor.
#include <gtest/gtest.h>

#include <cstring>

#include "common/error_message.h"
#include "host/core/error.h"
#include "host/ref/cpu_backend.h"
#include "host/util/splitmix64.h"
#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/ops/vulkan_backend.h"
#endif

namespace pocketlora {
namespace {

using test::error_of;
using test::mentions;

Tensor random_table(std::int64_t rows, std::int64_t cols) {
  Tensor t = Tensor::zeros({rows, cols});
  std::uint64_t s = 11;
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = static_cast<float>(splitmix64(s) >> 40) / 16777216.0f - 0.5f;
  return t;
}

// `table` written whole into one tensor and in ranges of `step` rows (the last one shorter) into another, both
// stored as `dtype`: the two read back byte for byte the same.
void check_write_rows(Backend& be, const Tensor& table, DType dtype, std::int64_t step) {
  const BTensor whole = be.alloc(table.shape(), dtype, Lifetime::Weights, "whole");
  const BTensor ranges = be.alloc(table.shape(), dtype, Lifetime::Weights, "table");
  be.write(whole, table);
  for (std::int64_t r = 0; r < table.dim(0); r += step)
    be.write_rows(ranges, r, table.slice_rows(r, std::min(table.dim(0), r + step)));
  const Tensor a = be.read(whole), b = be.read(ranges);
  ASSERT_EQ(a.nbytes(), b.nbytes());
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << dtype_name(dtype) << " in ranges of " << step;
  EXPECT_TRUE(mentions(error_of<ShapeError>([&] { be.write_rows(ranges, table.dim(0) - 1, table.slice_rows(0, 2)); }),
                       {"write_rows", "'table'"}));
  EXPECT_THROW(be.write_rows(ranges, 0, Tensor::zeros({1, table.dim(1) + 1})), ShapeError);
  EXPECT_THROW(be.write_rows(ranges, -1, table.slice_rows(0, 1)), ShapeError);
}

TEST(WriteRows, CpuBackendMatchesOneWhole) {
  ref::CpuBackend be;
  const Tensor table = random_table(37, 24);
  for (const DType dtype : {DType::F32, DType::F16})
    for (const std::int64_t step : {1, 5, 37}) check_write_rows(be, table, dtype, step);
}

#if POCKETLORA_HAS_VULKAN
TEST(VulkanWriteRows, RangesStraddlingBindingChunksMatchOneWhole) {
  POCKETLORA_REQUIRE_GPU();
  vk::DeviceOptions o;
  o.block_size = 4096;  // tables above 4 KiB are split into binding chunks
  test::OwnDevice own(o);
  ops::VulkanBackend be(own.dev());
  const Tensor table = random_table(200, 24);  // f32: 19,200 bytes -> 5 chunks of 42 rows; f16: 3 of 85
  for (const DType dtype : {DType::F32, DType::F16})
    for (const std::int64_t step : {1, 5, 37, 200}) check_write_rows(be, table, dtype, step);
}
#endif

}  // namespace
}  // namespace pocketlora
