// GPU NF4 quantization (first level) as op cases (tests/harness/op_case.h) against the CPU quantizer
// (host/core/nf4_quantize.h, itself checked against hand-computed cases and the bitsandbytes fixtures in
// tests/ref/test_nf4_quantize.cpp): codes and absmax bit for bit. The GPU path against the bitsandbytes fixtures
// and the NaN/Inf refusal stay plain tests below.
#include <cmath>
#include <cstring>
#include <limits>

#include "common/error_message.h"
#include "common/nf4_test_data.h"
#include "harness/op_case.h"
#include "host/core/nf4_quantize.h"

#if POCKETLORA_HAS_VULKAN
#include <nlohmann/json.hpp>

#include "common/nf4_bnb_fixture.h"
#include "common/test_data.h"
#include "gpu/gpu_fixture.h"
#include "host/core/error.h"
#include "host/ops/nf4_matmul.h"
#include "host/ops/nf4_quantize.h"
#endif

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

Tensor u8_tensor(const std::vector<std::uint8_t>& bytes) {
  Tensor t = Tensor::zeros({static_cast<std::int64_t>(bytes.size())}, DType::U8);
  if (!bytes.empty()) std::memcpy(t.raw(), bytes.data(), bytes.size());
  return t;
}

// x (f32 or f16) -> codes u8 [ceil(n/2)], absmax f32 [ceil(n/64)] and the kernel's NaN/Inf status (0, and the
// first bad element's index left at 0xffffffff). Reference: quantize_nf4_codes, or the whole CPU quantizer with
// double quantization (whose first level the phone path takes from the GPU) when `via_quantize_nf4`.
class Nf4QuantizeCase : public OpCase {
 public:
  Nf4QuantizeCase(const std::string& label, Tensor x, bool via_quantize_nf4 = false)
      : x_(std::move(x)), via_quantize_nf4_(via_quantize_nf4) {
    name = "nf4_quantize/" + label + (x_.dtype() == DType::F16 ? "_f16" : "");
  }
  std::vector<Tensor> inputs() const override { return {x_}; }
  std::vector<std::string> output_names() const override { return {"codes", "absmax", "status"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    const std::vector<float> x = in[0].to_float_vector();
    std::vector<std::uint8_t> codes;
    std::vector<float> absmax;
    if (via_quantize_nf4_) {
      const Nf4Quantized q = quantize_nf4(x, in[0].shape(), true, "w");
      codes = q.codes;
      absmax = q.absmax;
    } else {
      quantize_nf4_codes(x, codes, absmax);
    }
    return {u8_tensor(codes), Tensor::from_vector(absmax, {static_cast<std::int64_t>(absmax.size())}),
            int_tensor({0, -1})};
  }
  // The same decision tree on the same fp32 values (x * (1/absmax) on both sides): bit for bit.
  Tolerance tolerance(std::size_t) const override {
    Tolerance t;
    t.max_abs = 0;
    return t;
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    const std::int64_t n = in[0].numel();
    auto x = run.up(in[0]);
    // The kernel writes whole 32-bit words of codes: a buffer rounded up, read back as ceil(n/2) bytes.
    ops::DeviceTensor codes = run.zeros({(n + 7) / 8 * 4}, DType::U8, "codes");
    codes.shape = {(n + 1) / 2};
    auto absmax = run.zeros({(n + 63) / 64}, DType::F32, "absmax");
    auto status = run.up(int_tensor({0, -1}), "status");  // must hold {0, 0xffffffff} before the dispatch
    ops::nf4_quantize(run.seq, x, codes, absmax, status);
    return {codes, absmax, status};
  }
#endif
  // Per element: |x|, the block max, x * (1/absmax) and four comparisons of the decision tree.
  double flops() const override { return 7.0 * static_cast<double>(x_.numel()); }
  double bytes() const override {
    const auto n = static_cast<double>(x_.numel());
    return n * static_cast<double>(dtype_size(x_.dtype())) + n / 2 + 4.0 * std::ceil(n / 64);
  }

 private:
  Tensor x_;
  bool via_quantize_nf4_;
};

std::vector<OpCasePtr> nf4_quantize_cases() {
  std::vector<OpCasePtr> v;
  // Rows of 172 (blocks span rows), odd element counts (padded low nibble), short last blocks.
  for (auto shape : {Shape{5, 172}, Shape{3, 21}, Shape{64, 64}, Shape{1, 1}, Shape{7, 130}})
    v.push_back(std::make_shared<Nf4QuantizeCase>(
        "random_" + std::to_string(shape[0]) + "x" + std::to_string(shape[1]),
        random_tensor(shape, 5 + static_cast<std::uint64_t>(shape[1]), -3.0f, 2.0f)));
  // The phone path: first level on the GPU, the absmax array double-quantized on the host by the same function
  // the CPU quantizer uses (checked by hand in tests/ref/test_nf4_double_quant.cpp): equal first levels give the
  // CPU quantizer's bytes.
  v.push_back(std::make_shared<Nf4QuantizeCase>("gpu_path_of_dq_300x172", random_tensor({300, 172}, 8, -2.0f, 2.0f),
                                                true));
  // Values at and one ulp above each threshold, +-absmax, a zero block, an all-equal block, an odd tail (the
  // hand-computed codes of this input: tests/ref/test_nf4_quantize.cpp).
  const std::vector<float> hand = nf4_hand_quantize_input();
  v.push_back(
      std::make_shared<Nf4QuantizeCase>("hand_thresholds", Tensor::from_vector(hand, {static_cast<std::int64_t>(hand.size())})));
  v.push_back(std::make_shared<Nf4QuantizeCase>("random_9x100", random_tensor({9, 100}, 77, -1.0f, 1.0f, DType::F16)));
  return v;
}

POCKETLORA_OP_CASES(Nf4Quantize, nf4_quantize_cases)

#if POCKETLORA_HAS_VULKAN
using Nf4QuantizeGpu = GpuTest;

TEST_F(Nf4QuantizeGpu, BitsandbytesFixturesByteForByte) {
  // GPU first level + host double quantization must store the bytes bitsandbytes saves; the GPU dequantize of
  // the saved state (with the file's own nested_quant_map) must give dequantize_4bit's output bit for bit.
  POCKETLORA_REQUIRE_DATA(dir, kNf4BnbDir);
  for (const char* name : kNf4BnbCases) {
    SCOPED_TRACE(name);
    const Nf4BnbCase c = load_nf4_bnb_case(dir, name);
    const auto got = ops::quantize_nf4_blocking(dev(), arena(), up(c.input), name);
    EXPECT_TRUE(same_bytes(got.codes, c.expected_bytes(""))) << "weight";
    // The saved state, as the one host NF4 representation, with the file's own maps.
    Nf4Quantized saved;
    saved.shape = c.input.shape();
    const auto code_bytes = c.expected_bytes("");
    saved.codes.assign(code_bytes.begin(), code_bytes.end());
    saved.double_quant = c.double_quant;
    auto floats = [&](const std::string& suffix) {
      const auto b = c.expected_bytes(suffix);
      std::vector<float> v(b.size() / sizeof(float));
      std::memcpy(v.data(), b.data(), b.size());
      return v;
    };
    if (c.double_quant) {
      const Nf4DoubleQuant dq = double_quantize_absmax(got.absmax);
      EXPECT_TRUE(same_bytes(dq.absmax_q, c.expected_bytes(".absmax"))) << "absmax codes";
      EXPECT_TRUE(same_bytes(as_bytes_of(dq.nested_absmax), c.expected_bytes(".nested_absmax")));
      const auto b = c.expected_bytes(".absmax");
      saved.dq.absmax_q.assign(b.begin(), b.end());
      saved.dq.nested_absmax = floats(".nested_absmax");
      saved.dq.code_map = floats(".nested_quant_map");
      const auto js = c.expected_bytes(".quant_state.bitsandbytes__nf4");
      saved.dq.offset = nlohmann::json::parse(js.begin(), js.end())["nested_offset"].get<float>();
      EXPECT_EQ(dq.offset, saved.dq.offset) << "nested_offset";
    } else {
      EXPECT_TRUE(same_bytes(as_bytes_of(got.absmax), c.expected_bytes(".absmax"))) << "f32 absmax";
      saved.absmax = floats(".absmax");
    }
    const auto w = ops::upload_nf4(dev(), arena(), saved, name);
    const auto out = ops::allocate(arena(), c.input.shape(), DType::F32, "dequant");
    vk::Sequence seq(dev());
    ops::nf4_dequantize(seq, w, out);
    seq.submit();
    const Tensor d = down(out);
    EXPECT_TRUE(same_bytes({static_cast<const std::uint8_t*>(d.raw()), d.nbytes()},
                           {static_cast<const std::uint8_t*>(c.dequant.raw()), c.dequant.nbytes()}))
        << "GPU dequant";
  }
}

TEST_F(Nf4QuantizeGpu, NanOrInfIsRejectedNamingTensorAndElement) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    Tensor t = random_tensor({4, 50}, 3);
    t.data<float>()[137] = bad;
    t.data<float>()[190] = bad;
    EXPECT_TRUE(mentions(error_of<NumericError>([&] {
                           ops::quantize_nf4_blocking(dev(), arena(), up(t), "model.layers.3.mlp.up_proj.weight");
                         }),
                         {"model.layers.3.mlp.up_proj.weight", "element 137"}));
  }
}
#endif

}  // namespace
