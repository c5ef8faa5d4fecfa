// Backend::view_rows: rows [row0, row0 + rows) of a tensor's leading dimension, the same storage, on both
// backends — ops on the view touch only those rows; a range outside the tensor is a ShapeError naming it; on
// Vulkan an offset the device cannot bind is a DeviceLimitError naming the tensor.
#include <gtest/gtest.h>

#include "common/error_message.h"
#include "host/core/error.h"
#include "host/ref/cpu_backend.h"
#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/ops/vulkan_backend.h"
#endif

namespace pocketlora {
namespace {

using test::error_of;
using test::mentions;

// x [6, 2, 4] = 0..47; fills rows [2, 5) through a view with 100 + their own values (add of the view to itself
// plus a fill), and reads the view back.
void check_view_rows(Backend& be) {
  std::vector<float> v(48);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const BTensor x = be.upload(Tensor::from_vector(v, {6, 2, 4}), Lifetime::Step, "x");
  const BTensor hundred = be.alloc({3, 2, 4}, DType::F32, Lifetime::Step, "hundred");
  const BTensor rows = be.view_rows(x, 2, 3);
  EXPECT_EQ(rows.shape, (Shape{3, 2, 4}));
  const Tensor before = be.read(rows);
  for (std::int64_t i = 0; i < before.numel(); ++i) ASSERT_EQ(before.data<float>()[i], 16.0f + static_cast<float>(i));
  be.begin();
  be.fill(hundred, 100.0f);
  be.add(rows, hundred, rows, 1.0f);
  be.end();
  be.run();
  const Tensor all = be.read(x);
  for (std::int64_t i = 0; i < 48; ++i)
    EXPECT_EQ(all.data<float>()[i], static_cast<float>(i) + (i >= 16 && i < 40 ? 100.0f : 0.0f)) << i;
  // A view of a view, and the whole tensor as a view.
  EXPECT_EQ(be.read(be.view_rows(rows, 1, 1)).data<float>()[0], 124.0f);
  EXPECT_EQ(be.view_rows(x, 0, 6).shape, x.shape);
  EXPECT_TRUE(mentions(error_of<ShapeError>([&] { be.view_rows(x, 4, 3); }), {"'x'", "[4, 7)", "[6, 2, 4]"}));
  EXPECT_THROW(be.view_rows(x, -1, 2), ShapeError);
  be.free_step();
}

TEST(ViewRows, CpuBackend) {
  ref::CpuBackend be;
  check_view_rows(be);
}

#if POCKETLORA_HAS_VULKAN
using VulkanViewRows = test::GpuTest;

TEST_F(VulkanViewRows, SubRangeOfTheBuffer) {
  ops::VulkanBackend be(dev());
  check_view_rows(be);
}

TEST_F(VulkanViewRows, OffsetBelowTheDeviceAlignmentIsRefused) {
  const std::uint64_t align = dev().caps().min_storage_buffer_offset_alignment;
  if (align <= 4) GTEST_SKIP() << "minStorageBufferOffsetAlignment " << align << ": every f32 row is aligned";
  ops::VulkanBackend be(dev());
  const auto aligned_row = static_cast<std::int64_t>(align / 4);
  const BTensor t = be.alloc({aligned_row + 8}, DType::F32, Lifetime::Step, "chunked loss");
  EXPECT_TRUE(mentions(error_of<DeviceLimitError>([&] { be.view_rows(t, 1, 8); }),
                       {"'chunked loss'", "minStorageBufferOffsetAlignment", std::to_string(align)}));
  // The first row whose byte offset is a multiple of the alignment is accepted.
  EXPECT_NO_THROW(be.view_rows(t, aligned_row, 8));
  be.free_step();
}
#endif

}  // namespace
}  // namespace pocketlora
