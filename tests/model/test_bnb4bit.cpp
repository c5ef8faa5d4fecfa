// bnb-4bit NF4 checkpoints: quantize the real stories260K model, write it in transformers' layout, read it back
// without re-quantizing: identical NF4 bytes and absmax, dequantized weights within the NF4 error bound,
// untouched non-linear tensors, and the key names / dtypes / quant_state JSON transformers expects.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "common/nf4_bnb_fixture.h"
#include "host/util/sha256.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/formats/bnb4bit_linear.h"
#include "host/formats/safetensors.h"
#include "host/model/bnb4bit.h"
#include "shaders/common/nf4_codebook.h"

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
  EXPECT_EQ(f.at(q + ".absmax").dtype, "U8");  // the source is float32, so is quant_state "dtype" below
  EXPECT_EQ(f.at(q + ".quant_map").shape, (Shape{16}));
  EXPECT_EQ(f.at(q + ".nested_quant_map").shape, (Shape{256}));
  // The released bitsandbytes table (x86 torch >= 2.0), as in tests/ref/test_nf4_quantize.cpp.
  EXPECT_EQ(sha256_hex({f.at(q + ".nested_quant_map").data, f.at(q + ".nested_quant_map").nbytes}),
            "e732639a65f497b4ad684bb166a4467708255edd5207757de8b8f0c7e1fda89c");
  const auto& st = f.at(q + ".quant_state.bitsandbytes__nf4");
  const std::string js(reinterpret_cast<const char*>(st.data), st.nbytes);
  EXPECT_EQ(js.rfind("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [64, 64], "
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

TEST(Bnb4bit, QuantStateDtypeIsTheSourceTensorDtype) {
  // bitsandbytes records the dtype of the tensor it quantized; a float16 checkpoint gives "float16" whatever
  // the compute dtype in config.json.
  POCKETLORA_REQUIRE_DATA(hf, "models/stories260K/derived/hf/model.safetensors");
  TempDir tmp;
  auto src = SafetensorsFile::open(hf);
  std::vector<std::pair<std::string, Tensor>> half;
  for (auto& t : src.tensors()) half.emplace_back(t.name, src.tensor(t.name).to(DType::F16));
  write_safetensors(tmp / "model.safetensors", half);
  std::filesystem::copy_file(hf.parent_path() / "config.json", tmp / "config.json");
  std::filesystem::create_directories(tmp / "out");
  write_bnb4bit(tmp / "model.safetensors", tmp / "out" / "model.safetensors", DType::BF16);
  auto f = SafetensorsFile::open(tmp / "out" / "model.safetensors");
  const auto& st = f.at("model.layers.1.mlp.down_proj.weight.quant_state.bitsandbytes__nf4");
  const std::string js(reinterpret_cast<const char*>(st.data), st.nbytes);
  EXPECT_NE(js.find("\"dtype\": \"float16\""), std::string::npos) << js;
  std::ifstream cin(tmp / "out" / "config.json");
  EXPECT_EQ(nlohmann::json::parse(cin)["quantization_config"]["bnb_4bit_compute_dtype"], "bfloat16");
}

TEST(Bnb4bit, PerLinearStateDictIsTheBitsandbytesFileByteForByte) {
  // Quantize each reference input, write its state dict through the project's writer, and compare every
  // tensor (name, dtype, shape, bytes) and the quant_state JSON bytes with the file bitsandbytes saved.
  POCKETLORA_REQUIRE_DATA(dir, kNf4BnbDir);
  TempDir tmp;
  for (const char* name : kNf4BnbCases) {
    SCOPED_TRACE(name);
    const Nf4BnbCase c = load_nf4_bnb_case(dir, name);
    const Nf4Quantized q = quantize_nf4(c.input_values(), c.input.shape(), c.double_quant, name);
    const auto sd = bnb4bit_linear_state_dict("weight", q, bnb4bit_torch_dtype(c.input.dtype()));
    std::vector<SafetensorsEntry> entries;
    for (const auto& t : sd) entries.push_back({t.name, t.dtype, t.shape, t.bytes});
    const auto path = tmp / (std::string(name) + ".safetensors");
    write_safetensors(path, entries, {{"format", "pt"}});
    const auto saved = SafetensorsFile::open(path);
    EXPECT_EQ(saved.metadata(), c.expected.metadata());
    ASSERT_EQ(saved.tensors().size(), c.expected.tensors().size());
    for (const auto& want : c.expected.tensors()) {
      const auto* got = saved.find(want.name);
      ASSERT_NE(got, nullptr) << "missing " << want.name;
      EXPECT_EQ(got->dtype, want.dtype) << want.name;
      EXPECT_EQ(got->shape, want.shape) << want.name;
      EXPECT_TRUE(same_bytes({got->data, got->nbytes}, {want.data, want.nbytes})) << want.name;
    }
  }
}

TEST(Bnb4bit, ReadingTheBitsandbytesFileDequantizesExactly) {
  POCKETLORA_REQUIRE_DATA(dir, kNf4BnbDir);
  for (const char* name : kNf4BnbCases) {
    SCOPED_TRACE(name);
    const Nf4BnbCase c = load_nf4_bnb_case(dir, name);
    const auto ck = SafetensorsCheckpoint::open(dir / (std::string(name) + ".expected.safetensors"));
    const Bnb4bitLinear lin = read_bnb4bit_linear(ck, "weight", name);
    EXPECT_EQ(lin.dtype, DType::F32);
    EXPECT_EQ(lin.q.shape, c.input.shape());
    EXPECT_EQ(lin.q.double_quant, c.double_quant);
    EXPECT_EQ(lin.tensor_names.size(), c.expected.tensors().size());
    const Tensor w = dequantize_nf4(lin.q);
    EXPECT_TRUE(same_bytes({static_cast<const std::uint8_t*>(w.raw()), w.nbytes()},
                           {static_cast<const std::uint8_t*>(c.dequant.raw()), c.dequant.nbytes()}));
  }
}

// Writes the fixture's saved state dict to `path` with `edit(name, bytes)` applied to each tensor's bytes (a
// tensor whose byte count changes is stored as 1-D U8, as the quant_state JSON is).
void write_edited_fixture(const Nf4BnbCase& c, const std::filesystem::path& path,
                          const std::function<void(const std::string&, std::vector<std::uint8_t>&)>& edit) {
  std::vector<std::vector<std::uint8_t>> bytes;
  bytes.reserve(c.expected.tensors().size());  // entries keep spans into it
  std::vector<SafetensorsEntry> entries;
  for (const auto& t : c.expected.tensors()) {
    bytes.emplace_back(t.data, t.data + t.nbytes);
    edit(t.name, bytes.back());
    const Shape shape = bytes.back().size() == t.nbytes ? t.shape : Shape{static_cast<std::int64_t>(bytes.back().size())};
    entries.push_back({t.name, t.dtype, shape, bytes.back()});
  }
  write_safetensors(path, entries);
}

TEST(Bnb4bit, ReaderAcceptsTheThreeQuantStateDtypesOnly) {
  POCKETLORA_REQUIRE_DATA(dir, kNf4BnbDir);
  TempDir tmp;
  const Nf4BnbCase c = load_nf4_bnb_case(dir, "s0_3x5");
  for (const std::string dtype : {"float32", "float16", "bfloat16", "int8"}) {
    const auto path = tmp / (dtype + ".safetensors");
    write_edited_fixture(c, path, [&](const std::string& name, std::vector<std::uint8_t>& b) {
      if (!name.ends_with(kBnb4bitStateSuffix)) return;
      std::string js(b.begin(), b.end());
      js.replace(js.find("float32"), 7, dtype);  // the first: "dtype"
      b.assign(js.begin(), js.end());
    });
    const auto ck = SafetensorsCheckpoint::open(path);
    if (dtype == "int8") {
      try {
        read_bnb4bit_linear(ck, "weight", "int8 state");
        FAIL() << "expected FormatError";
      } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("dtype 'int8'"), std::string::npos) << e.what();
      }
    } else {
      EXPECT_EQ(read_bnb4bit_linear(ck, "weight", dtype).dtype, dtype_from_torch_name(dtype));
    }
  }
}

}  // namespace

namespace {
// A checkpoint saved by a torch build without fused multiply-adds stores a nested_quant_map that differs from the
// released table; bitsandbytes decodes with the stored map, and so must the reader (here: the map halved).
TEST(Bnb4bit, ReaderDecodesWithTheCheckpointsOwnNestedMap) {
  POCKETLORA_REQUIRE_DATA(dir, kNf4BnbDir);
  TempDir tmp;
  const Nf4BnbCase c = load_nf4_bnb_case(dir, "s0_256x256");
  std::vector<float> halved(256);
  write_edited_fixture(c, tmp / "halved.safetensors", [&](const std::string& name, std::vector<std::uint8_t>& b) {
    if (name != "weight.nested_quant_map") return;
    std::memcpy(halved.data(), b.data(), 1024);
    for (float& v : halved) v *= 0.5f;
    std::memcpy(b.data(), halved.data(), 1024);
  });
  const auto ck = SafetensorsCheckpoint::open(tmp / "halved.safetensors");
  const Bnb4bitLinear lin = read_bnb4bit_linear(ck, "weight", "halved map");
  ASSERT_EQ(lin.q.dq.code_map, halved);
  // Block 0 by the bitsandbytes formula with the stored map: absmax = map[q] * nested + offset (two roundings).
  const volatile float scaled = halved[lin.q.dq.absmax_q[0]] * lin.q.dq.nested_absmax[0];
  const float absmax0 = scaled + lin.q.dq.offset;
  const Tensor w = dequantize_nf4(lin.q);
  for (std::int64_t e = 0; e < 64; ++e) {
    const std::uint8_t byte = lin.q.codes[static_cast<std::size_t>(e / 2)];
    const int code = e % 2 == 0 ? byte >> 4 : byte & 0xf;
    ASSERT_EQ(w.data<float>()[e], kNf4Codebook[code] * absmax0) << e;
  }
  // And the standard file still decodes to bitsandbytes' output, so the difference comes from the map alone.
  EXPECT_FALSE(same_bytes({static_cast<const std::uint8_t*>(w.raw()), w.nbytes()},
                          {static_cast<const std::uint8_t*>(c.dequant.raw()), c.dequant.nbytes()}));
}
}  // namespace
