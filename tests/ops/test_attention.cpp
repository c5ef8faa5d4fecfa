// Causal GQA attention as op cases (tests/harness/op_case.h): both GPU variants (simple: [n_heads, T, T] scratch;
// lean: flash-style, at the profile's block size and at other ones) against the reference, forward (out, lse) and
// backward (dq, dk, dv), with and without a packed-document (segment id) mask; the reference backward against
// finite differences. The reference itself (hand-computed cases, the segment mask against documents run one by
// one) is tested in tests/ref/test_attention_ref.cpp.
#include <array>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error_message.h"
#include "harness/op_case.h"
#include "host/ref/attention.h"

#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/core/error.h"
#include "host/ops/attention.h"
#include "runtime/command.h"
#endif

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

using Variant = AttentionOptions::Variant;

const char* variant_name(Variant v) { return v == Variant::Simple ? "simple" : v == Variant::Lean ? "lean" : "auto"; }

// Tolerances (f32 GPU vs the reference computed in f64 from the same f32 inputs), inputs uniform in [-1, 1]:
// - out is a convex combination of v rows, |out| <= 1; both variants sum at most T terms in f32 and use the
//   GPU's exp (Vulkan allows 3 + 2|x| ulp): limit max_abs 2e-6 (seen on lavapipe: 1.5e-7).
// - lse = max + log(sum) is O(1) to O(log T), i.e. a few f32 ulps of a number up to ~6: limit relative
//   error 1e-6 against max(|want|, 1) (seen: 9.5e-7 absolute, 1.6e-7 relative).
// - dq, dk, dv are sums of up to T (x group heads) O(1) products; dv of early keys grows to ~T/4 in magnitude,
//   so the error is relative: limit 1e-5 against max(|want|, 1) (seen: 1.6e-6).
Tolerance out_tol() {
  Tolerance t;
  t.max_abs = 2e-6;
  return t;
}
Tolerance lse_tol() {
  Tolerance t;
  t.max_rel = 1e-6;
  t.rel_floor = 1.0;
  return t;
}
Tolerance grad_tol() {
  Tolerance t;
  t.max_rel = 1e-5;
  t.rel_floor = 1.0;
  return t;
}
// f16 storage (q, k, v, dout, out, dq, dk, dv f16; lse f32) against the reference in f64 on the same f16 values:
// the f32 sums above, then one rounding to f16 of each stored output: f16_storage_tolerance with the f32 floors
// (out: 1e-2, as |out| <= 1 may cancel; gradients: 1). lse keeps lse_tol (computed in f32 from the f16 inputs).

// What one case records on the GPU: forward then backward in one sequence (the compare set: the backward consumes
// the GPU forward's lse), or — perf mode only, to time the two separately — the forward alone, or the backward
// alone on the reference's out and lse.
enum class Pass { Both, Forward, Backward };

struct AttentionSpec {
  AttentionDims d;
  Variant variant = Variant::Simple;
  std::uint32_t lean_rows = 0;      // 0: the profile's attention.lean_rows
  std::vector<std::int64_t> docs;   // packed documents (segment mask); empty: the plain causal mask
  std::array<std::uint64_t, 4> seeds{11, 12, 13, 14};  // q, k, v, dout
  float qk_range = 1.0f;            // q and k uniform in [-qk_range, qk_range]; v and dout in [-1, 1]
  Pass pass = Pass::Both;
  bool gradcheck = false;
  bool perf_only = false;           // sized for real GPUs: may exceed this device's limits (skipped there)
  DType storage = DType::F32;       // q, k, v, dout, out, dq, dk, dv (lse is always f32)
  std::int64_t max_scratch = 0;     // > 0: the device's attention.simple_max_scratch (simple kernels in head chunks)
};

class AttentionCase : public OpCase {
 public:
  explicit AttentionCase(AttentionSpec s) : s_(std::move(s)) {
    const auto& d = s_.d;
    name = fmt::format("attention/T{}_h{}_kv{}_d{}", d.T, d.n_heads, d.n_kv_heads, d.head_dim);
    if (!s_.docs.empty()) name += fmt::format("_docs_{}", fmt::join(s_.docs, "_"));
    name += fmt::format("/{}", variant_name(s_.variant));
    if (s_.lean_rows) name += fmt::format("_rows{}", s_.lean_rows);
    if (s_.pass == Pass::Forward) name += "_fwd";
    if (s_.pass == Pass::Backward) name += "_bwd";
    if (s_.storage == DType::F16) name += "_f16";
    if (s_.max_scratch > 0) {
      name += fmt::format("_scratch{}", s_.max_scratch);
      profile_override = fmt::format("\"attention.simple_max_scratch\": {}", s_.max_scratch);
    }
  }

  // q, k, v, dout, then segments (with docs), then (backward pass only) the reference's out and lse.
  std::vector<Tensor> inputs() const override {
    const auto& d = s_.d;
    const DType st = s_.storage;
    std::vector<Tensor> in{random_tensor(q_shape(), s_.seeds[0], -s_.qk_range, s_.qk_range, st),
                           random_tensor(kv_shape(), s_.seeds[1], -s_.qk_range, s_.qk_range, st),
                           random_tensor(kv_shape(), s_.seeds[2], -1, 1, st),
                           random_tensor(q_shape(), s_.seeds[3], -1, 1, st)};
    if (!s_.docs.empty()) in.push_back(attention_segments(s_.docs));
    if (s_.pass == Pass::Backward) {
      Tensor out = Tensor::zeros(q_shape()), lse = Tensor::zeros({d.T, d.n_heads});
      ref::attention(in[0], in[1], in[2], segments(in), out, lse);
      in.push_back(out);
      in.push_back(lse);
    }
    return in;
  }
  std::vector<std::string> output_names() const override {
    switch (s_.pass) {
      case Pass::Forward: return {"out", "lse"};
      case Pass::Backward: return {"dq", "dk", "dv"};
      default: return {"out", "lse", "dq", "dk", "dv"};
    }
  }
  // The simple and lean cases of one shape (and the two lean block sizes) read the same inputs, so outside perf
  // mode (which times the reference) their reference is computed once: with OpenBLAS threads competing with
  // lavapipe's, the f64 reference can take longer than the GPU run, and the port kept the old run time.
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    static std::string cached_key;
    static std::vector<Tensor> cached;
    const std::string key =
        fmt::format("{} {} {} {} docs {} seeds {} qk {} pass {} {}", s_.d.T, s_.d.n_heads, s_.d.n_kv_heads,
                    s_.d.head_dim, fmt::join(s_.docs, ","), fmt::join(s_.seeds, ","), s_.qk_range,
                    static_cast<int>(s_.pass), dtype_name(s_.storage));
    if (bench_mode()) return compute_reference(in);
    if (key != cached_key) {
      cached = compute_reference(in);
      cached_key = key;
    }
    std::vector<Tensor> r;
    for (const auto& t : cached) r.push_back(t.clone());
    return r;
  }
  // f32 cases: the reference at f32 storage. f16 cases: in f64 (lse too), except that the backward reads out
  // rounded to f16, as stored by the forward it pairs with.
  std::vector<Tensor> compute_reference(const std::vector<Tensor>& in) const {
    const DType out_dtype = s_.storage == DType::F32 ? DType::F32 : DType::F64;
    return run_ref(in, out_dtype, out_dtype, out_dtype == DType::F32 ? DType::F32 : s_.storage);
  }
  bool has_cpu() const override { return s_.storage != DType::F32; }
  std::vector<Tensor> cpu(const std::vector<Tensor>& in) const override {
    return run_ref(in, s_.storage, DType::F32, s_.storage);
  }
  Tolerance tolerance(std::size_t i) const override {
    const std::string n = output_names().at(i);
    if (s_.storage == DType::F16 && n != "lse") return f16_storage_tolerance(n == "out" ? 1e-2 : 1.0);
    return n == "out" ? out_tol() : n == "lse" ? lse_tol() : grad_tol();
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    const auto& d = s_.d;
    const AttentionOptions opt = options();
    auto q = run.up(in[0], "q"), k = run.up(in[1], "k"), v = run.up(in[2], "v");
    ops::DeviceTensor seg;
    if (!s_.docs.empty()) seg = run.up(in[4], "segments");
    const ops::DeviceTensor* segp = s_.docs.empty() ? nullptr : &seg;
    ops::DeviceTensor out, lse;
    if (s_.pass == Pass::Backward) {
      out = run.up(in[in.size() - 2], "out");
      lse = run.up(in[in.size() - 1], "lse");
    } else {
      out = ops::allocate(run.arena, q_shape(), s_.storage, "out");  // every output element is written
      lse = ops::allocate(run.arena, {d.T, d.n_heads}, DType::F32, "lse");
      ops::attention(run.seq, run.arena, q, k, v, segp, out, lse, opt);
      if (s_.pass == Pass::Forward) return {out, lse};
    }
    auto dout = run.up(in[3], "dout");
    auto dq = ops::allocate(run.arena, q_shape(), s_.storage, "dq"),
         dk = ops::allocate(run.arena, kv_shape(), s_.storage, "dk"),
         dv = ops::allocate(run.arena, kv_shape(), s_.storage, "dv");
    ops::attention_backward(run.seq, run.arena, q, k, v, segp, out, lse, dout, dq, dk, dv, opt);
    if (s_.pass == Pass::Backward) return {dq, dk, dv};
    return {out, lse, dq, dk, dv};
  }
  std::string unsupported_on(const vk::Device& dev) const override {
    if (!s_.perf_only) return {};
    try {
      ops::attention_variant(dev, s_.d, options());
    } catch (const Error& e) {  // head_dim (ShapeError) or a device limit (DeviceLimitError)
      return e.what();
    }
    return {};
  }
#endif

  // L = sum(dout .* attention(q, k, v)) in fp64; analytic gradients from ref::attention_backward (with the out and
  // lse the forward saved); h = 1e-6 (truncation ~h^2, rounding ~1e-16/h): |error| < 1e-7.
  bool has_gradcheck() const override { return s_.gradcheck; }
  double loss(const std::vector<Tensor>& in) const override {
    Tensor out = Tensor::zeros(q_shape(), DType::F64), lse = Tensor::zeros({s_.d.T, s_.d.n_heads}, DType::F64);
    ref::attention(in[0], in[1], in[2], segments(in), out, lse);
    return dot(out, in[3]);
  }
  std::vector<Tensor> gradient(const std::vector<Tensor>& in) const override {
    const Tensor* seg = segments(in);
    Tensor out = Tensor::zeros(q_shape(), DType::F64), lse = Tensor::zeros({s_.d.T, s_.d.n_heads}, DType::F64);
    ref::attention(in[0], in[1], in[2], seg, out, lse);
    std::vector<Tensor> g{Tensor::zeros(q_shape(), DType::F64), Tensor::zeros(kv_shape(), DType::F64),
                          Tensor::zeros(kv_shape(), DType::F64)};
    ref::attention_backward(in[0], in[1], in[2], seg, out, lse, in[3], g[0], g[1], g[2]);
    return g;  // dout (the loss weight) and the segment ids are not differentiated
  }
  GradTolerance grad_tolerance() const override { return {1e-7}; }

  // Per head, per visible (query, key) pair: forward q.k and p.v, 2 * head_dim each; backward the recomputed
  // q.k, dout.v, dv += p dout, dq += ds k, dk += ds q, 2 * head_dim each. Bytes: each tensor read or written once
  // (the simple variant's score scratch not counted).
  double flops() const override {
    const double per_pair = static_cast<double>(s_.d.n_heads * s_.d.head_dim) * visible_pairs();
    return (s_.pass == Pass::Backward ? 0.0 : 4.0 * per_pair) + (s_.pass == Pass::Forward ? 0.0 : 10.0 * per_pair);
  }
  double bytes() const override {
    const auto& d = s_.d;
    const double nq = static_cast<double>(d.T * d.n_heads * d.head_dim),
                 nkv = static_cast<double>(d.T * d.n_kv_heads * d.head_dim), nl = static_cast<double>(d.T * d.n_heads);
    const double fwd = 2 * nq + 2 * nkv + nl;   // q, k, v in; out, lse out
    const double bwd = 4 * nq + 4 * nkv + nl;   // q, k, v, out, dout, lse in; dq, dk, dv out
    return 4.0 * ((s_.pass == Pass::Backward ? 0.0 : fwd) + (s_.pass == Pass::Forward ? 0.0 : bwd));
  }

 private:
  // Forward then backward through host/ref: out stored as out_dtype, lse as lse_dtype, dq/dk/dv as out_dtype; the
  // backward reads out as out_dtype rounded to saved_out (the dtype the forward stored it in).
  std::vector<Tensor> run_ref(const std::vector<Tensor>& in, DType out_dtype, DType lse_dtype, DType saved_out) const {
    const auto& d = s_.d;
    const Tensor* seg = segments(in);
    Tensor out = Tensor::zeros(q_shape(), out_dtype), lse = Tensor::zeros({d.T, d.n_heads}, lse_dtype);
    ref::attention(in[0], in[1], in[2], seg, out, lse);
    if (s_.pass == Pass::Forward) return {out, lse};
    const Tensor saved = out.to(saved_out);
    Tensor dq = Tensor::zeros(q_shape(), out_dtype), dk = Tensor::zeros(kv_shape(), out_dtype),
           dv = Tensor::zeros(kv_shape(), out_dtype);
    ref::attention_backward(in[0], in[1], in[2], seg, saved, lse, in[3], dq, dk, dv);
    if (s_.pass == Pass::Backward) return {dq, dk, dv};
    return {out, lse, dq, dk, dv};
  }
  Shape q_shape() const { return {s_.d.T, s_.d.n_heads, s_.d.head_dim}; }
  Shape kv_shape() const { return {s_.d.T, s_.d.n_kv_heads, s_.d.head_dim}; }
  const Tensor* segments(const std::vector<Tensor>& in) const { return s_.docs.empty() ? nullptr : &in[4]; }
  AttentionOptions options() const {
    AttentionOptions o;
    o.variant = s_.variant;
    o.lean_rows = s_.lean_rows;
    return o;
  }
  double visible_pairs() const {
    std::vector<std::int64_t> docs = s_.docs.empty() ? std::vector<std::int64_t>{s_.d.T} : s_.docs;
    double n = 0;
    for (auto t : docs) n += static_cast<double>(t * (t + 1) / 2);
    return n;
  }

  AttentionSpec s_;
};

AttentionSpec spec(std::int64_t T, std::int64_t H, std::int64_t Hkv, std::int64_t D, Variant v) {
  AttentionSpec s;
  s.d = {T, H, Hkv, D};
  s.variant = v;
  return s;
}

std::vector<OpCasePtr> attention_cases() {
  std::vector<OpCasePtr> v;
  auto add = [&](const AttentionSpec& s) { v.push_back(std::make_shared<AttentionCase>(s)); };
  const std::vector<AttentionDims> shapes{{1, 8, 4, 8},    {7, 8, 4, 8},   {33, 4, 1, 12}, {130, 8, 4, 8},
                                          {130, 2, 2, 64}, {33, 8, 4, 64}, {7, 2, 2, 12},  {130, 4, 1, 12},
                                          {1, 4, 1, 64},   {33, 2, 2, 8},  {40, 32, 4, 64}};
  for (const auto& d : shapes)
    for (Variant var : {Variant::Simple, Variant::Lean}) add(spec(d.T, d.n_heads, d.n_kv_heads, d.head_dim, var));
  // The lean kernels with other query/key block sizes than the profile's (1: no blocking; 3: odd, so T = 7, 33
  // and 130 end in partial blocks). Small head_dim only, to keep lavapipe's run time down: each (head_dim, rows)
  // pair is another set of lean pipelines (forward, dQ, dK/dV) to compile; head_dim 64 runs the profile's block
  // size above.
  for (const auto& d : shapes) {
    if (d.head_dim > 12) continue;
    for (std::uint32_t rows : {1u, 3u}) {
      AttentionSpec s = spec(d.T, d.n_heads, d.n_kv_heads, d.head_dim, Variant::Lean);
      s.lean_rows = rows;
      s.seeds = {41, 42, 43, 44};
      add(s);
    }
  }
  // Packed window of four documents (lengths 13, 1, 20, 6) against the reference's segment mask (which
  // tests/ref/test_attention_ref.cpp checks against the documents run one at a time).
  for (Variant var : {Variant::Simple, Variant::Lean}) {
    AttentionSpec s = spec(40, 4, 2, 12, var);
    s.docs = {13, 1, 20, 6};
    s.seeds = {21, 22, 23, 24};
    add(s);
  }
  // f16 storage on both variants (GQA 4 on 1, and a packed window on the lean kernels).
  for (Variant var : {Variant::Simple, Variant::Lean}) {
    AttentionSpec s = spec(33, 4, 1, 12, var);
    s.storage = DType::F16;
    add(s);
  }
  {
    AttentionSpec s = spec(40, 4, 2, 12, Variant::Lean);
    s.docs = {13, 1, 20, 6};
    s.seeds = {21, 22, 23, 24};
    s.storage = DType::F16;
    add(s);
  }
  // The simple kernels over head chunks (attention.simple_max_scratch below the [n_heads, T, T] scores): one
  // [4, 33, 33] f32 buffer of 17424 bytes fits the 20000-byte budget, so the forward runs 2 chunks of 4 heads and
  // the backward (two buffers) 4 chunks of one kv group (2 heads); with packed documents, and in f16.
  for (DType st : {DType::F32, DType::F16}) {
    AttentionSpec s = spec(33, 8, 4, 12, Variant::Simple);
    s.max_scratch = 20000;
    s.storage = st;
    s.seeds = {61, 62, 63, 64};
    if (st == DType::F16) s.docs = {10, 23};
    add(s);
  }
  // Gradient checks of the reference (GQA: 4 query heads on 2 kv heads; plain causal and two packed documents),
  // q and k in [-2, 2] for less uniform softmax rows. Compared on the GPU with the simple kernels only (the lean
  // ones would compile pipelines for head_dim 3 just for this).
  for (const std::vector<std::int64_t>& docs : {std::vector<std::int64_t>{}, std::vector<std::int64_t>{4, 2}}) {
    AttentionSpec s = spec(6, 4, 2, 3, Variant::Simple);
    s.docs = docs;
    s.seeds = {32, 33, 34, 31};
    s.qk_range = 2.0f;
    s.gradcheck = true;
    add(s);
  }
  // Perf mode adds TinyLlama-sized cases (32 q / 4 kv heads, head_dim 64, T 512), forward and backward timed
  // separately; a variant past this device's limits is skipped there.
  if (bench_mode())
    for (const AttentionDims& d : {AttentionDims{130, 8, 4, 8}, AttentionDims{512, 8, 4, 8},
                                   AttentionDims{130, 32, 4, 64}, AttentionDims{512, 32, 4, 64}})
      for (Variant var : {Variant::Simple, Variant::Lean})
        for (Pass p : {Pass::Forward, Pass::Backward}) {
          AttentionSpec s = spec(d.T, d.n_heads, d.n_kv_heads, d.head_dim, var);
          s.pass = p;
          s.perf_only = true;
          add(s);
        }
  return v;
}

POCKETLORA_OP_CASES(Attention, attention_cases)

#if POCKETLORA_HAS_VULKAN
class AttentionGpu : public GpuTest {};

// Auto must pick the simple kernels up to the profile threshold and the lean ones beyond it. A device with a
// profile override fixes the thresholds (T 64, head_dim 32) and lifts the loop cap, so every expected variant is
// a literal (the capped path is LeanRespectsDeviceLoopLimit's).
TEST(AttentionVariant, AutoFollowsProfileThreshold) {
  POCKETLORA_REQUIRE_GPU();
  ProfileOverrideDevice own(R"("attention.simple_max_t": 64, "attention.simple_min_head_dim": 32,
                               "attention.simple_max_scratch": 32768, "attention.loop_limit": 0)");
  const vk::Device& dev = own.dev();
  AttentionOptions lean;
  lean.variant = Variant::Lean;
  EXPECT_EQ(ops::attention_variant(dev, {64, 2, 1, 32}, {}), Variant::Simple);  // at both thresholds
  EXPECT_EQ(ops::attention_variant(dev, {65, 2, 1, 32}, {}), Variant::Lean);    // T above
  EXPECT_EQ(ops::attention_variant(dev, {64, 2, 1, 31}, {}), Variant::Lean);    // head_dim below
  EXPECT_EQ(ops::attention_variant(dev, {8, 2, 1, 8}, {}), Variant::Lean);
  // Scratch above attention.simple_max_scratch (32768 bytes) does not rule the simple kernels out: they run over
  // chunks of whole kv groups. {64, 4, 2, 32}: a group (2 heads) is 2 x 64 x 64 x 4 = 32768 bytes per buffer, so
  // the forward takes one group's buffer and the backward two, each one group (the minimum) though over budget.
  EXPECT_EQ(ops::attention_variant(dev, {64, 4, 2, 32}, {}), Variant::Simple);
  EXPECT_EQ(ops::attention_scratch_bytes(dev, {64, 4, 2, 32}, {}, false), 32768u);
  EXPECT_EQ(ops::attention_scratch_bytes(dev, {64, 4, 2, 32}, {}, true), 65536u);
  // One group of {32, 8, 2, 32} (4 heads x 32 x 32 x 4 = 16384 bytes): two groups fit the forward's budget.
  EXPECT_EQ(ops::attention_scratch_bytes(dev, {32, 8, 2, 32}, {}, false), 32768u);
  EXPECT_EQ(ops::attention_scratch_bytes(dev, {32, 8, 2, 32}, {}, true), 32768u);
  // Beyond the lean kernels' head_dim limit (256) the simple variant is taken whenever its scratch fits.
  EXPECT_EQ(ops::attention_variant(dev, {65, 1, 1, 300}, {}), Variant::Simple);
  EXPECT_EQ(ops::attention_scratch_bytes(dev, {8, 2, 1, 8}, lean, false), 0u);
  // Simple backward: two [n_heads, T, T] f32 buffers = 2 * 2 * 64 * 64 * 4 = 65536 bytes.
  EXPECT_EQ(ops::attention_scratch_bytes(dev, {64, 2, 1, 32}, {}, true), 65536u);
}

// Drivers that cap loop iterations per invocation (profile attention.loop_limit, lavapipe) must not run the lean
// kernels past the cap: Auto falls back to the simple variant, a forced Lean is refused. The largest lean case
// within the cap is run and compared (a wrong iteration estimate would show up here as partial sums).
TEST_F(AttentionGpu, LeanRespectsDeviceLoopLimit) {
  const auto limit = dev().profile().param("attention.loop_limit");
  if (limit <= 0) GTEST_SKIP() << "no loop limit on this device";
  AttentionOptions lean;
  lean.variant = Variant::Lean;
  // 4 query heads on one kv head: the dK/dV pass, ~T * 4 * 2 * (head_dim + 1) loop checks per invocation,
  // reaches the cap at T ~ 60.
  const std::int64_t H = 4, Hkv = 1, D = 64;
  std::int64_t T_ok = 8;
  while (true) {
    try {
      ops::attention_scratch_bytes(dev(), {T_ok + 1, H, Hkv, D}, lean, true);
    } catch (const DeviceLimitError&) {
      break;
    }
    T_ok += 1;
    ASSERT_LT(T_ok, 100000) << "no limit reached";
  }
  const AttentionDims over{T_ok + 1, H, Hkv, D};
  EXPECT_EQ(ops::attention_variant(dev(), over, {}), Variant::Simple);
  EXPECT_TRUE(mentions(error_of<DeviceLimitError>([&] { ops::attention_variant(dev(), over, lean); }),
                       {"attention.loop_limit"}));
  AttentionSpec s = spec(T_ok, H, Hkv, D, Variant::Lean);
  s.seeds = {51, 52, 53, 54};
  run_compare(AttentionCase(s));
}

TEST_F(AttentionGpu, RejectsBadShapesNamingOpAndShapes) {
  auto make = [&](Shape s, DType dt = DType::F32) { return ops::allocate(arena(), std::move(s), dt, "t"); };
  vk::Sequence seq(dev());
  auto expect_shape_error = [&](const ops::DeviceTensor& q, const ops::DeviceTensor& k, const ops::DeviceTensor& out,
                                const ops::DeviceTensor& lse, const std::vector<std::string>& needles,
                                const ops::DeviceTensor* seg = nullptr, AttentionOptions opt = {}) {
    const std::string msg = error_of<ShapeError>([&] { ops::attention(seq, arena(), q, k, k, seg, out, lse, opt); });
    EXPECT_TRUE(mentions(msg, {"ops::attention"}));
    for (const auto& n : needles) EXPECT_TRUE(mentions(msg, {n}));
  };
  // n_heads 3 not divisible by n_kv_heads 2.
  expect_shape_error(make({4, 3, 8}), make({4, 2, 8}), make({4, 3, 8}), make({4, 3}), {"[4, 3, 8]", "[4, 2, 8]", "multiple"});
  // head_dim mismatch.
  expect_shape_error(make({4, 2, 8}), make({4, 1, 6}), make({4, 2, 8}), make({4, 2}), {"[4, 2, 8]", "[4, 1, 6]", "head_dim"});
  // Rank 2 q.
  expect_shape_error(make({4, 16}), make({4, 1, 8}), make({4, 2, 8}), make({4, 2}), {"[4, 16]", "3-D"});
  // T mismatch between q and k.
  expect_shape_error(make({4, 2, 8}), make({5, 1, 8}), make({4, 2, 8}), make({4, 2}), {"[5, 1, 8]"});
  // lse shape, segment shape and dtypes.
  expect_shape_error(make({4, 2, 8}), make({4, 1, 8}), make({4, 2, 8}), make({2, 4}), {"lse [2, 4]"});
  auto seg_bad = make({5}, DType::I32);
  expect_shape_error(make({4, 2, 8}), make({4, 1, 8}), make({4, 2, 8}), make({4, 2}), {"segments [5]"}, &seg_bad);
  auto seg_f32 = make({4});
  expect_shape_error(make({4, 2, 8}), make({4, 1, 8}), make({4, 2, 8}), make({4, 2}), {"segments [4] f32"}, &seg_f32);
  expect_shape_error(make({4, 2, 8}, DType::BF16), make({4, 1, 8}), make({4, 2, 8}), make({4, 2}),
                     {"q [4, 2, 8] bf16"});
  expect_shape_error(make({4, 2, 8}, DType::F16), make({4, 1, 8}, DType::F16), make({4, 2, 8}),
                     make({4, 2}, DType::F16), {"lse [4, 2] f16"});
  // The lean kernels hold head_dim in registers: at most 256.
  AttentionOptions lean;
  lean.variant = Variant::Lean;
  expect_shape_error(make({2, 1, 257}), make({2, 1, 257}), make({2, 1, 257}), make({2, 1}), {"head_dim 257"}, nullptr,
                     lean);
  // Backward: gradient shapes.
  auto q = make({4, 2, 8}), k = make({4, 1, 8}), out = make({4, 2, 8}), lse = make({4, 2});
  EXPECT_TRUE(mentions(error_of<ShapeError>([&] {
                         ops::attention_backward(seq, arena(), q, k, k, nullptr, out, lse, out, out, out, k);
                       }),
                       {"ops::attention_backward"}));
  EXPECT_EQ(seq.dispatch_count(), 0u);
}
#endif

}  // namespace
