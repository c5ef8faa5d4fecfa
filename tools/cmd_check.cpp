// `pocketlora check`: the end-to-end smoke test a new user runs — open the chosen device (validation on if
// POCKETLORA_VALIDATION=1), run the GPU GEMM and the Eigen GEMM on the same data, compare.
#if POCKETLORA_HAS_VULKAN
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "host/ops/matmul.h"
#include "host/ref/matmul.h"
#include "runtime/command.h"
#include "runtime/device.h"
#include "runtime/instance.h"
#include "tools/command_registry.h"

namespace pocketlora::cli {
namespace {

struct CheckArgs {
  int device = -1;
  std::int64_t m = 128, n = 256, k = 512;
};

int run_check(const CheckArgs& a) {
  vk::DeviceOptions opt;
  if (a.device >= 0) opt.index = a.device;
  vk::Device dev(opt);
  fmt::print("device: [{}] {} ({}), profile {}\n", dev.index(), dev.caps().name, vk::device_type_name(dev.caps().type),
             dev.profile().name());
  // Deterministic inputs with exactly representable values.
  Tensor A = Tensor::zeros({a.m, a.k}), B = Tensor::zeros({a.n, a.k});
  for (std::int64_t i = 0; i < A.numel(); ++i) A.data<float>()[i] = static_cast<float>((i * 7 % 17) - 8) / 8.0f;
  for (std::int64_t i = 0; i < B.numel(); ++i) B.data<float>()[i] = static_cast<float>((i * 5 % 13) - 6) / 8.0f;
  Tensor want = Tensor::zeros({a.m, a.n});
  ref::matmul(A, B, want);

  vk::Arena arena(dev, vk::Lifetime::Scratch, "check");
  auto dA = ops::upload(dev, arena, A, "A"), dB = ops::upload(dev, arena, B, "B");
  auto dC = ops::allocate(arena, {a.m, a.n}, DType::F32, "C");
  vk::Sequence seq(dev, true);
  ops::matmul(seq, dA, dB, dC);
  seq.submit();
  Tensor got = ops::download(dev, dC);
  double max_abs = 0;
  for (std::int64_t i = 0; i < got.numel(); ++i)
    max_abs = std::max(max_abs, static_cast<double>(std::abs(got.data<float>()[i] - want.data<float>()[i])));
  const double ms = seq.timings().empty() ? 0 : seq.timings()[0].ms;
  fmt::print("GEMM {}x{}x{} f32: GPU vs Eigen max |error| = {:.3g} (limit 1e-3){}\n", a.m, a.n, a.k, max_abs,
             ms > 0 ? fmt::format(", {:.3f} ms, {:.2f} GFLOPS", ms, 2.0 * a.m * a.n * a.k / ms * 1e-6) : "");
  const auto msgs = vk::ValidationLog::global().count();
  if (dev.instance().validation_enabled()) fmt::print("validation messages: {}\n", msgs);
  const bool ok = max_abs <= 1e-3 && msgs == 0;
  fmt::print("{}\n", ok ? "check: OK" : "check: FAILED");
  return ok ? 0 : 1;
}

CommandRegistration register_cmd_check("check", "Open the GPU and verify a GEMM against the Eigen reference", [](CLI::App& sub) {
  auto a = std::make_shared<CheckArgs>();
  sub.add_option("--device", a->device, "Device index (default: POCKETLORA_DEVICE or best)");
  sub.add_option("-m", a->m, "Rows of A")->check(CLI::PositiveNumber);
  sub.add_option("-n", a->n, "Rows of B")->check(CLI::PositiveNumber);
  sub.add_option("-k", a->k, "Shared dimension")->check(CLI::PositiveNumber);
  return [a] { return run_check(*a); };
});

}  // namespace
}  // namespace pocketlora::cli
#endif  // POCKETLORA_HAS_VULKAN
