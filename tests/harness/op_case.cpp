#include "harness/op_case.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "bench/bench_util.h"

#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#endif

namespace pocketlora::test {

double OpCase::loss(const std::vector<Tensor>&) const {
  throw std::logic_error("op case '" + name + "' declares a gradient check but defines no loss()");
}

std::vector<Tensor> OpCase::gradient(const std::vector<Tensor>&) const {
  throw std::logic_error("op case '" + name + "' declares a gradient check but defines no gradient()");
}

std::vector<Tensor> OpCase::cpu(const std::vector<Tensor>&) const {
  throw std::logic_error("op case '" + name + "' declares a CPU compare but defines no cpu()");
}

std::ostream& operator<<(std::ostream& os, const OpCasePtr& c) { return os << c->name; }
void PrintTo(const OpCasePtr& c, std::ostream* os) { *os << c->name; }

std::string gtest_name(const OpCase& c) {
  std::string n = c.name;
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

std::vector<OpCasePtr> with_gradcheck(const std::vector<OpCasePtr>& all) {
  std::vector<OpCasePtr> v;
  for (const auto& c : all)
    if (c->has_gradcheck()) v.push_back(c);
  return v;
}

std::vector<OpCasePtr> with_cpu(const std::vector<OpCasePtr>& all) {
  std::vector<OpCasePtr> v;
  for (const auto& c : all)
    if (c->has_cpu()) v.push_back(c);
  return v;
}

namespace {

std::string output_name(const OpCase& c, std::size_t i) {
  const auto names = c.output_names();
  return i < names.size() ? names[i] : "out" + std::to_string(i);
}

// Perf mode: one row per compared case, printed (and written as JSON) once at the end of the test program.
struct PerfRow {
  std::string name;
  double gpu_ms = 0, ref_ms = 0, flops = 0, bytes = 0;
  bool gpu_timestamps = false;
};

class PerfTable : public ::testing::Environment {
 public:
  static PerfTable& get() {
    static PerfTable* table = [] {
      auto* t = new PerfTable;  // owned by gtest once registered
      ::testing::AddGlobalTestEnvironment(t);
      return t;
    }();
    return *table;
  }
  void add(PerfRow r) {
    std::lock_guard lock(mu_);
    rows_.push_back(std::move(r));
  }
  void TearDown() override {
    if (rows_.empty()) return;
    bench::Table t({"case", "GPU ms", "GFLOPS", "GB/s", "reference ms", "speed-up vs reference"});
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : rows_) {
      const double gflops = r.gpu_ms > 0 ? r.flops / r.gpu_ms * 1e-6 : 0;
      const double gbs = r.gpu_ms > 0 ? r.bytes / r.gpu_ms * 1e-6 : 0;
      t.row({r.name, fmt::format("{:.4f}{}", r.gpu_ms, r.gpu_timestamps ? "" : " (wall)"), fmt::format("{:.2f}", gflops),
             fmt::format("{:.2f}", gbs), fmt::format("{:.4f}", r.ref_ms),
             fmt::format("{:.2f}x", r.gpu_ms > 0 ? r.ref_ms / r.gpu_ms : 0)});
      j.push_back({{"case", r.name}, {"gpu_ms", r.gpu_ms}, {"gpu_timestamps", r.gpu_timestamps}, {"gflops", gflops},
                   {"gb_per_s", gbs}, {"reference_ms", r.ref_ms}, {"flops", r.flops}, {"bytes", r.bytes}});
    }
    std::printf("\nop cases, perf mode (median of replays; reference = host/ref on this CPU):\n");
    t.print();
    if (const char* path = std::getenv("POCKETLORA_OP_BENCH_JSON"); path && *path) bench::write_json(path, j);
  }

 private:
  std::mutex mu_;
  std::vector<PerfRow> rows_;
};

constexpr int kPerfReps = 5;

// Registered before main() so gtest runs its TearDown (the table) at the end of the program.
[[maybe_unused]] const PerfTable& kPerfTableRegistered = PerfTable::get();

}  // namespace

void run_compare(const OpCase& c) {
#if POCKETLORA_HAS_VULKAN
  std::string why;
  vk::Device* shared = GpuTest::shared_device(&why);
  if (!shared) {
    if (gpu_required()) FAIL() << "POCKETLORA_REQUIRE_GPU=1 but no Vulkan device: " << why;
    GTEST_SKIP() << "no Vulkan device (" << why << ")";
  }
  ValidationWatch watch;  // before any device it should watch
  std::optional<ProfileOverrideDevice> own;
  std::optional<vk::Arena> shared_arena;
  if (!c.profile_override.empty()) own.emplace(c.profile_override);
  vk::Device& dev = own ? own->dev() : *shared;
  if (const std::string why_not = c.unsupported_on(dev); !why_not.empty())
    GTEST_SKIP() << c.name << ": not run on this device: " << why_not;
  if (!own) shared_arena.emplace(dev, vk::Lifetime::Scratch, "op case");
  vk::Arena& arena = own ? own->arena() : *shared_arena;

  const std::vector<Tensor> in = c.inputs();
  const std::vector<Tensor> want = c.reference(in);
  vk::Sequence seq(dev, bench_mode());
  const GpuRun run{dev, arena, seq};
  const auto outs = c.gpu(run, in);
  ASSERT_EQ(outs.size(), want.size()) << c.name << ": gpu() and reference() return different output counts";
  seq.submit();
  for (std::size_t i = 0; i < outs.size(); ++i)
    EXPECT_TRUE(within(ops::download(dev, outs[i]), want[i], c.tolerance(i)))
        << c.name << " output " << output_name(c, i);

  if (bench_mode()) {
    PerfRow r{c.name, 0, 0, c.flops(), c.bytes(), false};
    std::vector<double> per_submit;
    for (int rep = 0; rep < kPerfReps; ++rep) {
      seq.submit();
      double ms = 0;
      for (const auto& t : seq.timings()) ms += t.ms;
      per_submit.push_back(ms);
    }
    std::sort(per_submit.begin(), per_submit.end());
    r.gpu_ms = per_submit[per_submit.size() / 2];
    r.gpu_timestamps = r.gpu_ms > 0;
    if (!r.gpu_timestamps) r.gpu_ms = bench::median_ms([&] { seq.submit(); }, kPerfReps, 0);
    r.ref_ms = bench::median_ms([&] { (void)c.reference(in); }, kPerfReps, 1);
    PerfTable::get().add(std::move(r));
  }
#else
  GTEST_SKIP() << c.name << ": built without Vulkan";
#endif
}

void run_gradcheck(const OpCase& c) {
  ASSERT_TRUE(c.has_gradcheck()) << c.name;
  const GradTolerance t = c.grad_tolerance();
  const auto r = gradcheck([&](const std::vector<Tensor>& in) { return c.loss(in); },
                           [&](const std::vector<Tensor>& in) { return c.gradient(in); }, c.gradcheck_inputs(), t.h,
                           t.max_elems);
  EXPECT_LE(r.max_abs, t.max_abs) << c.name << ": " << r.worst;
}

void run_cpu_compare(const OpCase& c) {
  ASSERT_TRUE(c.has_cpu()) << c.name;
  const std::vector<Tensor> in = c.inputs();
  const std::vector<Tensor> want = c.reference(in);
  const std::vector<Tensor> got = c.cpu(in);
  ASSERT_EQ(got.size(), want.size()) << c.name << ": cpu() and reference() return different output counts";
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_TRUE(within(got[i], want[i], c.tolerance(i))) << c.name << " output " << output_name(c, i) << " (CPU)";
}

}  // namespace pocketlora::test
