// Backend::reserve_step (host/backend/step_layout.h): Step allocations placed at a layout's offsets, on both
// backends. Tensors given the same bytes see each other's writes (the layout says they never live together);
// a write to one after a read of the other is ordered (on Vulkan by the barrier the sequence derives from byte
// ranges; the validation layer's synchronization checks are on in the tests); views work; allocations past the
// layout get their own memory; an allocation that is not the planned one, a host write the plan did not see, or a
// layout the backend cannot bind, is an error naming the tensor.
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

constexpr std::uint64_t kBlock = 4096;

// x and y share bytes [0, 256); z follows them; v [4, 64] f32 for views; w starts the second 4 KiB block.
StepLayout layout() {
  StepLayout l;
  l.limits = {256, kBlock};
  l.arena_bytes = kBlock + 256;
  l.tensors = {{"x", {64}, DType::F32, 0},
               {"y", {64}, DType::F32, 0},
               {"z", {64}, DType::F32, 256, /*host_written=*/true},
               {"v", {4, 64}, DType::F32, 512},
               {"w", {64}, DType::F32, kBlock}};
  return l;
}

void expect_all(const Tensor& t, float value, const char* what) {
  for (std::int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.data<float>()[i], value) << what << "[" << i << "]";
}

void check_placement(Backend& be) {
  const std::uint64_t before = be.memory_in_use();
  be.reserve_step(layout());
  EXPECT_GE(be.memory_in_use() - before, layout().arena_bytes);
  const BTensor x = be.alloc({64}, DType::F32, Lifetime::Step, "x");
  const BTensor y = be.alloc({64}, DType::F32, Lifetime::Step, "y");
  const BTensor z = be.alloc({64}, DType::F32, Lifetime::Step, "z");
  const BTensor v = be.alloc({4, 64}, DType::F32, Lifetime::Step, "v");
  const BTensor w = be.alloc({64}, DType::F32, Lifetime::Step, "w");
  const std::uint64_t planned = be.memory_in_use();
  const BTensor extra = be.alloc({64}, DType::F32, Lifetime::Step, "extra (not planned)");
  const std::uint64_t with_extra = be.memory_in_use();
  EXPECT_GT(with_extra, planned);

  be.begin();
  be.fill(x, 1.0f);
  be.add(x, x, z, 1.0f);  // z = 2, reading x ...
  be.fill(y, 3.0f);       // ... before y overwrites the same bytes
  be.add(y, y, w, 1.0f);  // w = 6, in the second block
  be.fill(extra, 5.0f);
  be.fill(v, 0.0f);
  const BTensor rows = be.view_rows(v, 1, 2);
  be.fill(rows, 7.0f);
  be.fill(be.reshape(be.view_rows(v, 3, 1), {8, 8}), 9.0f);
  be.end();
  be.run();
  expect_all(be.read(z), 2.0f, "z");
  expect_all(be.read(x), 3.0f, "x (y's bytes)");
  expect_all(be.read(w), 6.0f, "w");
  expect_all(be.read(extra), 5.0f, "extra");
  const Tensor vv = be.read(v);
  for (std::int64_t i = 0; i < vv.numel(); ++i)
    ASSERT_EQ(vv.data<float>()[i], i < 64 ? 0.0f : i < 192 ? 7.0f : 9.0f) << "v[" << i << "]";

  // The host may write what the plan saw it write (z), not what shares bytes by a plan that did not (x).
  be.write(z, Tensor::from_vector(std::vector<float>(64, 4.0f), {64}));
  expect_all(be.read(z), 4.0f, "z written by the host");
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { be.write(x, Tensor::zeros({64})); }), {"'x'", "host write"}));
  EXPECT_TRUE(
      mentions(error_of<InvalidArgument>([&] { be.write(be.view_rows(v, 0, 1), Tensor::zeros({1, 64})); }), {"'v'"}));

  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { be.reserve_step(layout()); }), {"reserve_step() twice"}));
  be.free_step();
  EXPECT_LE(be.memory_in_use(), with_extra - layout().arena_bytes);  // the arena is released
  // Released with the step: a new layout may be reserved, and allocations must follow it.
  be.reserve_step(layout());
  be.alloc({64}, DType::F32, Lifetime::Step, "x");
  be.alloc({64}, DType::F32, Lifetime::Weights, "weights are not planned");
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { be.alloc({65}, DType::F32, Lifetime::Step, "y"); }),
                       {"#1", "'y' [65] f32", "'y' [64] f32"}));
  EXPECT_TRUE(
      mentions(error_of<InvalidArgument>([&] { be.alloc({64}, DType::F32, Lifetime::Step, "q"); }), {"'q'", "'y'"}));
  be.free_step();
}

void check_refused_layouts(Backend& be) {
  StepLayout misaligned = layout();
  misaligned.tensors[2].offset = 260;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { be.reserve_step(misaligned); }), {"'z'", "260"}));
  StepLayout across = layout();
  across.tensors[4].offset = kBlock - 128;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { be.reserve_step(across); }), {"'w'", "block"}));
  StepLayout outside = layout();
  outside.arena_bytes = kBlock;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { be.reserve_step(outside); }), {"'w'", "arena"}));
  StepLayout coarse = layout();
  coarse.limits.alignment = 8;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { be.reserve_step(coarse); }), {"alignment"}));
  // A refused layout reserves nothing.
  be.alloc({3}, DType::F32, Lifetime::Step, "anything");
  be.free_step();
}

TEST(StepLayout, CpuBackendPlacesStepTensorsAtTheirOffsets) {
  ref::CpuBackend be;
  check_placement(be);
  check_refused_layouts(be);
}

#if POCKETLORA_HAS_VULKAN
using VulkanStepLayout = test::GpuTest;

TEST_F(VulkanStepLayout, PlacesStepTensorsAtTheirOffsets) {
  ops::VulkanBackend be(dev());
  const StepArenaLimits lim = be.step_arena_limits();
  ASSERT_EQ(lim.alignment & (lim.alignment - 1), 0u);
  EXPECT_GE(lim.alignment, dev().caps().min_storage_buffer_offset_alignment);
  EXPECT_LE(lim.block_bytes, dev().caps().max_storage_buffer_range);
  if (dev().caps().max_memory_allocation_size) {
    EXPECT_LE(lim.block_bytes, dev().caps().max_memory_allocation_size);
  }
  ASSERT_LE(lim.alignment, 256u) << "the test layout is aligned to 256 bytes";
  check_placement(be);
  check_refused_layouts(be);
  // A layout without blocks, or with blocks larger than the device binds, is refused.
  StepLayout one = layout();
  one.limits.block_bytes = 0;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { be.reserve_step(one); }), {"blocks"}));
  StepLayout big = layout();
  big.limits.block_bytes = lim.block_bytes * 2;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { be.reserve_step(big); }), {std::to_string(lim.block_bytes)}));
}
#endif

}  // namespace
}  // namespace pocketlora
