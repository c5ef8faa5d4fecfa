// bnb-4bit NF4 checkpoints: quantize the real stories260K model, write it in transformers' layout, read it back
// without re-quantizing: identical NF4 bytes and absmax, dequantized weights within the NF4 error bound,
// untouched non-linear tensors, and the key names / dtypes / quant_state JSON transformers expects.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/test_data.h"
#include "host/model/bnb4bit.h"
#include "host/model/safetensors.h"
#include "host/util/error.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(Bnb4bit, QuantizeWriteLoadRoundTripOnStories260K) {
  POCKETLORA_REQUIRE_DATA(hf, "models/stories260K/derived/hf/model.safetensors");
  TempDir tmp;
  const auto out = tmp / "model.safetensors";
  EXPECT_EQ(write_bnb4bit(hf, out), 35u);  // 5 layers x 7 linears
  ASSERT_TRUE(std::filesystem::exists(tmp / "config.json"));
  EXPECT_TRUE(is_bnb4bit_checkpoint(out));
  EXPECT_FALSE(is_bnb4bit_checkpoint(hf));

  // Layout as transformers saves it.
  auto f = SafetensorsFile::open(out);
  const std::string q = "model.layers.0.self_attn.q_proj.weight";
  EXPECT_EQ(f.at(q).dtype, "U8");
  EXPECT_EQ(f.at(q).shape, (Shape{64 * 64 / 2, 1}));
  EXPECT_EQ(f.at(q + ".absmax").dtype, "U8");
  EXPECT_EQ(f.at(q + ".quant_map").shape, (Shape{16}));
  EXPECT_EQ(f.at(q + ".nested_quant_map").shape, (Shape{256}));
  const auto& st = f.at(q + ".quant_state.bitsandbytes__nf4");
  const std::string js(reinterpret_cast<const char*>(st.data), st.nbytes);
  EXPECT_EQ(js.rfind("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [64, 64], "
                     "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": ", 0), 0u) << js;
  EXPECT_EQ(f.find("lm_head.weight"), nullptr);  // tied: not written
  std::ifstream cin(tmp / "config.json");
  auto cfg = nlohmann::json::parse(cin);
  EXPECT_EQ(cfg["quantization_config"]["quant_method"], "bitsandbytes");
  EXPECT_EQ(cfg["quantization_config"]["bnb_4bit_use_double_quant"], true);

  // Load without re-quantizing: same bytes as quantizing the HF tensors directly.
  auto m = load_bnb4bit(out);
  EXPECT_EQ(m.linears.size(), 35u);
  EXPECT_EQ(m.config.dim, 64);
  auto src = SafetensorsFile::open(hf);
  for (auto& [name, nq] : m.linears) {
    Tensor t = src.tensor(name);
    auto want = quantize_nf4({t.data<float>(), static_cast<std::size_t>(t.numel())}, t.shape(), true, name);
    ASSERT_EQ(nq.codes, want.codes) << name;
    ASSERT_EQ(nq.dq.absmax_q, want.dq.absmax_q) << name;
    ASSERT_EQ(nq.dq.nested_absmax, want.dq.nested_absmax) << name;
    ASSERT_EQ(nq.dq.offset, want.dq.offset) << name;
    // Dequantized weight within half the largest NF4 gap times the (double-quantized) block absmax.
    Tensor d = dequantize_nf4(nq);
    const auto am = nq.effective_absmax();
    for (std::int64_t i = 0; i < t.numel(); ++i)
      ASSERT_LE(std::fabs(d.data<float>()[i] - t.data<float>()[i]),
                0.5 * 0.3038072 * am[static_cast<std::size_t>(i / 64)] +
                    std::fabs(am[static_cast<std::size_t>(i / 64)] - want.absmax[static_cast<std::size_t>(i / 64)]) + 1e-6)
          << name << " element " << i;
  }
  Tensor e0 = src.tensor("model.embed_tokens.weight"), e1 = m.others.at("model.embed_tokens.weight");
  EXPECT_EQ(std::memcmp(e0.raw(), e1.raw(), e0.nbytes()), 0);
  EXPECT_EQ(m.others.count("model.norm.weight"), 1u);
}

TEST(Bnb4bit, QuantizeFromLlama2cMatchesFromHf) {
  // llama2.c stores q/k interleaved; the writer permutes them to HF's layout, so both sources give one file.
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(hf, "models/stories260K/derived/hf/model.safetensors");
  TempDir tmp;
  std::filesystem::create_directories(tmp / "a");
  std::filesystem::create_directories(tmp / "b");
  write_bnb4bit(bin, tmp / "a" / "model.safetensors");
  write_bnb4bit(hf, tmp / "b" / "model.safetensors");
  auto a = SafetensorsFile::open(tmp / "a" / "model.safetensors"), b = SafetensorsFile::open(tmp / "b" / "model.safetensors");
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (auto& t : a.tensors()) {
    const auto& u = b.at(t.name);
    ASSERT_EQ(t.nbytes, u.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(t.data, u.data, t.nbytes), 0) << t.name;
  }
}

TEST(Bnb4bit, BrokenQuantStateIsAClearError) {
  POCKETLORA_REQUIRE_DATA(hf, "models/stories260K/derived/hf/model.safetensors");
  TempDir tmp;
  write_bnb4bit(hf, tmp / "model.safetensors");
  auto f = SafetensorsFile::open(tmp / "model.safetensors");
  std::vector<std::pair<std::string, Tensor>> ts;
  for (auto& t : f.tensors()) {
    Tensor c = f.tensor(t.name).clone();
    if (t.name == "model.layers.2.mlp.up_proj.weight.quant_state.bitsandbytes__nf4") c.data<std::uint8_t>()[2] = '!';
    ts.emplace_back(t.name, c);
  }
  std::filesystem::create_directories(tmp / "bad");
  std::filesystem::copy_file(tmp / "config.json", tmp / "bad" / "config.json");
  write_safetensors(tmp / "bad" / "model.safetensors", ts);
  try {
    load_bnb4bit(tmp / "bad" / "model.safetensors");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.2.mlp.up_proj.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
