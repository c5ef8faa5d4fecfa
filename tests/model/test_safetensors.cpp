// safetensors: the real stories260K HF file, writer round trip, sharded index, and hostile headers.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "common/test_data.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/formats/safetensors.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

std::vector<std::uint8_t> read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void write_all(const std::filesystem::path& p, const std::vector<std::uint8_t>& b) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
std::vector<std::uint8_t> make_file(const std::string& header, std::size_t data_bytes) {
  std::vector<std::uint8_t> b(8 + header.size() + data_bytes, 0);
  const std::uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

TEST(Safetensors, ReadsRealStories260K) {
  POCKETLORA_REQUIRE_DATA(path, "models/stories260K/derived/hf/model.safetensors");
  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.tensors().size(), 48u);  // 5 layers x 9 + embed + norm + lm_head
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const auto& e = f.at("model.embed_tokens.weight");
  EXPECT_EQ(e.dtype, "F32");
  EXPECT_EQ(e.shape, (Shape{512, 64}));
  Tensor t = f.tensor("model.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(t.shape(), (Shape{64, 172}));
  // Tied embeddings: lm_head is stored anyway and equals the embedding (README of shared/data).
  Tensor a = f.tensor("model.embed_tokens.weight"), b = f.tensor("lm_head.weight");
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0);
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_THROW(f.at("nope"), FormatError);
}

TEST(Safetensors, WriterRoundTripsAndShardedIndexResolves) {
  TempDir tmp;
  Tensor w = random_tensor({3, 5}, 1), v = random_tensor({7}, 2, -1, 1, DType::F16);
  Tensor ids = Tensor::zeros({4}, DType::I64);
  write_safetensors(tmp / "a.safetensors", {{"w", w}, {"v", v}}, {{"format", "pt"}});
  write_safetensors(tmp / "b.safetensors", {{"ids", ids}});
  auto f = SafetensorsFile::open(tmp / "a.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(std::memcmp(f.tensor("w").raw(), w.raw(), w.nbytes()), 0);
  EXPECT_EQ(f.at("v").dtype, "F16");
  // The header is padded to 8 bytes.
  auto bytes = read_all(tmp / "a.safetensors");
  std::uint64_t hlen;
  std::memcpy(&hlen, bytes.data(), 8);
  EXPECT_EQ(hlen % 8, 0u);
  std::ofstream(tmp / "model.safetensors.index.json")
      << R"({"metadata": {}, "weight_map": {"w": "a.safetensors", "v": "a.safetensors", "ids": "b.safetensors"}})";
  auto c = SafetensorsCheckpoint::open(tmp.path());
  EXPECT_EQ(c.shards().size(), 2u);
  EXPECT_EQ(c.at("ids").dtype, "I64");
  EXPECT_EQ(c.tensors().size(), 3u);
  std::ofstream(tmp / "bad.index.json") << R"({"weight_map": {"x": "a.safetensors"}})";
  EXPECT_THROW(SafetensorsCheckpoint::open(tmp / "bad.index.json"), FormatError);
  std::ofstream(tmp / "escape.index.json") << R"({"weight_map": {"w": "../a.safetensors"}})";
  EXPECT_THROW(SafetensorsCheckpoint::open(tmp / "escape.index.json"), FormatError);
}

TEST(Safetensors, HostileHeadersAreClearErrorsNamingTheFile) {
  TempDir tmp;
  const auto p = tmp / "bad.safetensors";
  const std::vector<std::pair<std::string, std::vector<std::uint8_t>>> cases = {
      {"empty file", {}},
      {"short length", {1, 2, 3}},
      {"length past EOF", [] { auto b = make_file("{}", 0); b[0] = 0xff; b[1] = 0xff; return b; }()},
      {"not json", make_file("{\"a\": ", 0)},
      {"not an object", make_file("[1,2]", 0)},
      {"unknown dtype", make_file(R"({"t":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1)},
      {"offsets past data", make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4)},
      {"size mismatch", make_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)},
      {"overlap", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12)},
      {"negative dim", make_file(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)},
      {"huge dims", make_file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4)},
      {"trailing bytes", make_file(R"({"t":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 3)},
      {"missing field", make_file(R"({"t":{"dtype":"F32","shape":[1]}})", 4)},
  };
  for (auto& [what, bytes] : cases) {
    write_all(p, bytes);
    try {
      SafetensorsFile::open(p);
      ADD_FAILURE() << what << ": no error";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << what << ": " << e.what();
    }
  }
  EXPECT_THROW(SafetensorsFile::open(tmp / "missing.safetensors"), IoError);
}

}  // namespace
