// The LoRA dropout key read from a backend tensor (host/backend/backend.h lora_forward / lora_backward): one
// recorded program replayed with different keys draws different masks, with equal keys equal ones; the forward
// and backward of one run share the mask; the CPU and Vulkan backends draw the same mask bit for bit.
//
// A = I (r = K) makes T = drop(X)·Aᵀ exactly drop(X) (one nonzero product per sum), so T shows the mask itself.
#include <gtest/gtest.h>

#include <cstring>

#include "common/error_message.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ref/cpu_backend.h"
#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/ops/vulkan_backend.h"
#endif

namespace pocketlora {
namespace {

using test::random_tensor;

constexpr std::int64_t kM = 48, kK = 16, kN = 8;

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

struct Masks {
  Tensor t, dx;  // drop(X) and the dropped LoRA input gradient of one run
};

class DropoutProgram {
 public:
  explicit DropoutProgram(Backend& be) : be_(be) {
    Tensor eye = Tensor::zeros({kK, kK});
    for (std::int64_t i = 0; i < kK; ++i) eye.data<float>()[i * kK + i] = 1.0f;
    // X in [0.5, 1]: a dropped element is the only way to a zero.
    x_ = be.upload(random_tensor({kM, kK}, 1, 0.5f, 1.0f), Lifetime::Step, "x");
    a_ = be.upload(eye, Lifetime::Step, "A");
    b_ = be.upload(random_tensor({kN, kK}, 2, 0.5f, 1.0f), Lifetime::Step, "B");
    dy_ = be.upload(random_tensor({kM, kN}, 3, 0.5f, 1.0f), Lifetime::Step, "dY");
    y_ = be.alloc({kM, kN}, DType::F32, Lifetime::Step, "Y");
    t_ = be.alloc({kM, kK}, DType::F32, Lifetime::Step, "T");
    dx_ = be.alloc({kM, kK}, DType::F32, Lifetime::Step, "dX");
    da_ = be.alloc({kK, kK}, DType::F32, Lifetime::Step, "dA");
    db_ = be.alloc({kN, kK}, DType::F32, Lifetime::Step, "dB");
    key_ = be.alloc({kLoraKeyWords}, DType::I32, Lifetime::Step, "dropout key");
    LoraOptions opt;
    opt.dropout = 0.5f;
    opt.stream = 5;
    be.begin();
    be.fill(y_, 0.0f);
    be.lora_forward(x_, a_, b_, y_, t_, key_, opt);
    be.lora_backward(x_, a_, b_, t_, dy_, dx_, da_, db_, key_, opt);
    program_ = be.end();
  }
  Masks run(const LoraDropoutKey& key) {
    be_.write(key_, lora_key_tensor(key));
    be_.run(program_);
    return {be_.read(t_), be_.read(dx_)};
  }

 private:
  Backend& be_;
  BTensor x_, a_, b_, dy_, y_, t_, dx_, da_, db_, key_;
  Backend::Program program_ = 0;
};

// Where the forward dropped X, the backward dropped dX: dX = drop'(s·dY·B·A) with dY, B > 0 is zero exactly there.
void expect_forward_and_backward_share_the_mask(const Masks& m) {
  std::int64_t dropped = 0;
  for (std::int64_t i = 0; i < m.t.numel(); ++i) {
    const bool fwd = m.t.data<float>()[i] == 0.0f, bwd = m.dx.data<float>()[i] == 0.0f;
    ASSERT_EQ(fwd, bwd) << "element " << i;
    dropped += fwd;
  }
  // p = 0.5 over 768 elements: about 384 dropped (standard deviation ~14).
  EXPECT_GT(dropped, 250);
  EXPECT_LT(dropped, 518);
}

void check_replays(Backend& be) {
  DropoutProgram p(be);
  const Masks step1 = p.run({77, 1, 0}), step2 = p.run({77, 2, 0}), micro1 = p.run({77, 1, 1}),
              again = p.run({77, 1, 0});
  EXPECT_FALSE(bit_equal(step1.t, step2.t)) << "a new step must draw a new mask";
  EXPECT_FALSE(bit_equal(step1.t, micro1.t)) << "a new micro-batch must draw a new mask";
  EXPECT_TRUE(bit_equal(step1.t, again.t)) << "the same key must draw the same mask";
  EXPECT_TRUE(bit_equal(step1.dx, again.dx));
  for (const Masks* m : {&step1, &step2, &micro1}) expect_forward_and_backward_share_the_mask(*m);
}

TEST(LoraDropoutKey, CpuReplaysDrawTheKeysMask) {
  ref::CpuBackend be;
  check_replays(be);
}

TEST(LoraDropoutKey, DropoutWithoutAKeyIsRefused) {
  ref::CpuBackend be;
  const BTensor x = be.alloc({2, 4}, DType::F32, Lifetime::Step, "x"),
                a = be.alloc({1, 4}, DType::F32, Lifetime::Step, "a"),
                b = be.alloc({3, 1}, DType::F32, Lifetime::Step, "b"),
                y = be.alloc({2, 3}, DType::F32, Lifetime::Step, "y"),
                t = be.alloc({2, 1}, DType::F32, Lifetime::Step, "t"),
                bad = be.alloc({kLoraKeyWords}, DType::F32, Lifetime::Step, "f32 key");
  LoraOptions opt;
  opt.dropout = 0.1f;
  be.begin();
  EXPECT_TRUE(test::mentions(test::error_of<InvalidArgument>([&] { be.lora_forward(x, a, b, y, t, {}, opt); }),
                             {"cpu::lora_forward", "dropout key"}));
  EXPECT_TRUE(test::mentions(test::error_of<ShapeError>([&] { be.lora_forward(x, a, b, y, t, bad, opt); }),
                             {"dropout key", "f32", "expected i32 [4]"}));
  opt.dropout = 0.0f;
  be.lora_forward(x, a, b, y, t, {}, opt);  // no dropout: no key needed
  be.end();
}

#if POCKETLORA_HAS_VULKAN
using LoraDropoutKeyVulkan = test::GpuTest;

TEST_F(LoraDropoutKeyVulkan, ReplaysDrawTheKeysMaskAsTheCpuBackendDoes) {
  ops::VulkanBackend gpu(dev());
  check_replays(gpu);
  ref::CpuBackend cpu;
  DropoutProgram on_gpu(gpu), on_cpu(cpu);
  for (const LoraDropoutKey& key : {LoraDropoutKey{77, 1, 0}, LoraDropoutKey{0xfedcba9876543210ull, 40000, 3}})
    EXPECT_TRUE(bit_equal(on_gpu.run(key).t, on_cpu.run(key).t)) << "step " << key.step;
}
#endif

}  // namespace
}  // namespace pocketlora
