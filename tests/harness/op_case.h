#pragma once
// The one description of an op test case, as ggml's test-backend-ops has it: a case knows its inputs, how the
// reference (host/ref) computes its outputs, how the Vulkan op computes the same outputs, which scalar loss its
// backward differentiates, and how much work it is. The harness owns the three modes:
//   compare   — GPU outputs vs reference outputs within the case's stated tolerance (GPU builds);
//   gradcheck — the reference backward vs central finite differences in fp64 (every build, ASan included);
//   perf      — with POCKETLORA_OP_BENCH=1 every compared case is also timed (GPU timestamps, median of replays;
//               the reference's wall clock, median) and the harness prints one table at the end of the run
//               (GFLOPS, GB/s, speed-up) and writes it as JSON to $POCKETLORA_OP_BENCH_JSON when set.
// A file registers its cases once with POCKETLORA_OP_CASES(Suite, generator): that creates Suite.Compare/<case>
// for every case, SuiteGrad.Gradcheck/<case> for every case with a gradient check and SuiteCpu.Compare/<case> for
// every case with a CPU-storage compare (cpu()).
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "harness/op_harness.h"
#include "host/core/tensor.h"

#if POCKETLORA_HAS_VULKAN
#include "host/ops/device_tensor.h"
#include "runtime/command.h"
#include "runtime/device.h"
#endif

namespace pocketlora::test {

#if POCKETLORA_HAS_VULKAN
// Where a case records its GPU op: the device (the shared test device, or one opened with the case's profile
// override), an arena for its tensors and the sequence the harness submits.
struct GpuRun {
  vk::Device& dev;
  vk::Arena& arena;
  vk::Sequence& seq;
  ops::DeviceTensor up(const Tensor& t, const std::string& what = "case input") const {
    return ops::upload(dev, arena, t, what);
  }
  ops::DeviceTensor zeros(const Shape& shape, DType dtype, const std::string& what = "case output") const {
    return ops::upload(dev, arena, Tensor::zeros(shape, dtype), what);
  }
};
#endif

// Finite-difference settings: inputs are perturbed by ±h in fp64; at most max_elems sampled elements per input.
struct GradTolerance {
  double max_abs = 1e-7;
  double h = 1e-6;
  std::int64_t max_elems = 256;
};

class OpCase {
 public:
  virtual ~OpCase() = default;

  // "op/variant" — the gtest parameter name (characters other than [A-Za-z0-9_] become '_') and the perf row.
  std::string name;
  // A device-profile override (JSON object of "params") for cases that exercise a kernel variant the device's own
  // profile does not pick; empty: the shared test device.
  std::string profile_override;

  // Every tensor the op reads, deterministic (random_tensor with fixed seeds), including the initial values of
  // outputs that the op accumulates into.
  virtual std::vector<Tensor> inputs() const = 0;
  // The reference outputs for `in`, in the order gpu() returns them.
  virtual std::vector<Tensor> reference(const std::vector<Tensor>& in) const = 0;
  // Names of the outputs, for messages (default "out0", "out1", ...).
  virtual std::vector<std::string> output_names() const { return {}; }
  // Tolerance of output i against the reference (stated, with its reason, in the case's file).
  virtual Tolerance tolerance(std::size_t output) const = 0;
#if POCKETLORA_HAS_VULKAN
  // Records the GPU op(s) for `in` on run.seq; returns the device tensors that hold the outputs after submit.
  virtual std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const = 0;
  // Perf-only cases sized for real GPUs may exceed what a device allows (a binding size, a loop cap): a non-empty
  // reason skips the compare on that device. Cases of the compare set must not use it, so that a suite cannot
  // pass by skipping.
  virtual std::string unsupported_on(const vk::Device&) const { return {}; }
#endif

  // The CPU backend at the case's own storage dtypes (host/ref called with, say, f16 operands), compared with
  // reference() under the same tolerances as gpu(); runs in every build as Suite##Cpu.Compare/<case>. Cases whose
  // reference() already is that call need none.
  virtual bool has_cpu() const { return false; }
  virtual std::vector<Tensor> cpu(const std::vector<Tensor>& in) const;

  // Gradient check of the reference backward: a scalar loss of the (fp64) inputs and its analytic gradient per
  // input (an undefined Tensor: that input is not differentiated).
  virtual bool has_gradcheck() const { return false; }
  virtual double loss(const std::vector<Tensor>& in64) const;
  virtual std::vector<Tensor> gradient(const std::vector<Tensor>& in64) const;
  virtual GradTolerance grad_tolerance() const { return {}; }
  // Inputs of the gradient check (default: inputs()); cases whose op reads integer tensors keep them as they are.
  virtual std::vector<Tensor> gradcheck_inputs() const { return inputs(); }

  // Work of one run of gpu(), for the perf table.
  virtual double flops() const { return 0; }
  virtual double bytes() const { return 0; }
};

using OpCasePtr = std::shared_ptr<const OpCase>;
std::ostream& operator<<(std::ostream& os, const OpCasePtr& c);
void PrintTo(const OpCasePtr& c, std::ostream* os);  // gtest prints the case name, not the pointer
std::string gtest_name(const OpCase& c);

// The three modes (called by the registered tests; usable directly from a plain TEST too).
void run_compare(const OpCase& c);
void run_gradcheck(const OpCase& c);
void run_cpu_compare(const OpCase& c);

// The cases of `all` that have a gradient check.
std::vector<OpCasePtr> with_gradcheck(const std::vector<OpCasePtr>& all);
// The cases of `all` that have a CPU-storage compare.
std::vector<OpCasePtr> with_cpu(const std::vector<OpCasePtr>& all);

#if POCKETLORA_HAS_VULKAN
class OpCaseCompare : public ::testing::TestWithParam<OpCasePtr> {};
#define POCKETLORA_OP_CASES_COMPARE_(Suite, generator)                                                      \
  class Suite : public ::pocketlora::test::OpCaseCompare {};                                               \
  TEST_P(Suite, Compare) { ::pocketlora::test::run_compare(*GetParam()); }                                 \
  INSTANTIATE_TEST_SUITE_P(Cases, Suite, ::testing::ValuesIn(generator()),                                 \
                           [](const auto& p) { return ::pocketlora::test::gtest_name(*p.param); });
#else
#define POCKETLORA_OP_CASES_COMPARE_(Suite, generator)
#endif

class OpCaseGradcheck : public ::testing::TestWithParam<OpCasePtr> {};
#define POCKETLORA_OP_CASES(Suite, generator)                                                                        \
  POCKETLORA_OP_CASES_COMPARE_(Suite, generator)                                                                     \
  class Suite##Grad : public ::pocketlora::test::OpCaseGradcheck {};                                                 \
  TEST_P(Suite##Grad, Gradcheck) { ::pocketlora::test::run_gradcheck(*GetParam()); }                                 \
  GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Suite##Grad);                                                        \
  INSTANTIATE_TEST_SUITE_P(Cases, Suite##Grad, ::testing::ValuesIn(::pocketlora::test::with_gradcheck(generator())), \
                           [](const auto& p) { return ::pocketlora::test::gtest_name(*p.param); });                  \
  class Suite##Cpu : public ::pocketlora::test::OpCaseGradcheck {};                                                  \
  TEST_P(Suite##Cpu, Compare) { ::pocketlora::test::run_cpu_compare(*GetParam()); }                                  \
  GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Suite##Cpu);                                                         \
  INSTANTIATE_TEST_SUITE_P(Cases, Suite##Cpu, ::testing::ValuesIn(::pocketlora::test::with_cpu(generator())),        \
                           [](const auto& p) { return ::pocketlora::test::gtest_name(*p.param); });

}  // namespace pocketlora::test
