// Several programs recorded once and replayed in any order
// (host/backend/backend.h), as a training step replays its micro-batch and
// optimizer programs: the same checks on the CPU backend and, where built, on
// Vulkan.
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

float first(Backend& be, const BTensor& t) { return be.read(t).data<float>()[0]; }

// p1: x = 1; p2: x = x + 2x (x *= 3); p3: y = x + x. Replayed out of order,
// with a host write in between.
void check_programs(Backend& be) {
  const BTensor x = be.alloc({4}, DType::F32, Lifetime::Step, "x");
  const BTensor y = be.alloc({4}, DType::F32, Lifetime::Step, "y");
  be.begin();
  be.fill(x, 1.0f);
  const Backend::Program set = be.end();
  be.begin();
  be.add(x, x, x, 2.0f);
  const Backend::Program triple = be.end();
  be.begin();
  be.add(x, x, y, 1.0f);
  const Backend::Program twice = be.end();
  EXPECT_NE(set, triple);
  be.run(set);
  be.run(triple);
  be.run(triple);
  EXPECT_EQ(first(be, x), 9.0f);
  be.run(twice);
  EXPECT_EQ(first(be, y), 18.0f);
  Tensor five = Tensor::zeros({4});
  for (int i = 0; i < 4; ++i) five.data<float>()[i] = 5.0f;
  be.write(x, five);  // data changes between runs; the programs do not
  be.run(triple);
  be.run();  // the program ended last
  EXPECT_EQ(first(be, y), 30.0f);
  be.run(set);
  EXPECT_EQ(first(be, x), 1.0f);
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { be.run(twice + 1); }), {"program", "does not exist"}));
  be.begin();
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { be.run(set); }), {"while recording"}));
  be.end();
  be.free_step();
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { be.run(set); }), {"does not exist"}));
}

TEST(BackendPrograms, CpuReplaysProgramsInAnyOrder) {
  ref::CpuBackend be;
  check_programs(be);
}

#if POCKETLORA_HAS_VULKAN
using VulkanBackendPrograms = test::GpuTest;
TEST_F(VulkanBackendPrograms, ReplaysProgramsInAnyOrder) {
  ops::VulkanBackend be(dev());
  check_programs(be);
}
#endif

}  // namespace
}  // namespace pocketlora
