// The corrupt-file corpus: generated from the real checkpoints and run through every reader. Each case must end
// in a clean result or a FormatError/IoError naming the file — never a crash, hang or out-of-bounds read (CI
// runs this under ASan + UBSan). Prints the corpus size.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include "common/test_data.h"
#include "host/formats/gguf.h"
#include "host/formats/safetensors.h"
#include "host/model/llama2c.h"
#include "host/model/llama_weights.h"
#include "model/file_corpus.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

void sweep(Corpus& c, const std::string& tag, const std::vector<char>& good, std::size_t header_bytes,
           const std::function<void(const std::filesystem::path&)>& load) {
  // Truncations: every 7th byte through the header, then strided through the data.
  for (std::size_t cut = 0; cut < good.size(); cut += cut < header_bytes ? 7 : good.size() / 16 + 1)
    c.run(tag + ".cut", std::vector<char>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut)), load);
  // Flipped bytes (xor 0xff and +1) across the header.
  for (std::size_t i = 0; i < std::min(header_bytes, good.size()); i += 6) {
    auto b = good;
    b[i] = static_cast<char>(b[i] ^ 0xff);
    c.run(tag + ".flip", b, load);
    b = good;
    b[i] = static_cast<char>(b[i] + 1);
    c.run(tag + ".inc", b, load);
  }
}

TEST(CorruptFiles, EveryReaderSurvivesTheCorpus) {
  POCKETLORA_REQUIRE_DATA(st, "models/stories260K/derived/hf/model.safetensors");
  POCKETLORA_REQUIRE_DATA(gg, "models/stories260K/derived/stories260K-mixed-Q4_0.gguf");
  POCKETLORA_REQUIRE_DATA(l2, "models/stories260K/stories260K.bin");
  TempDir tmp;
  Corpus c{tmp};
  const auto s = read_all(st);
  sweep(c, "model.safetensors", s, 5000, [](auto& p) { SafetensorsFile::open(p); });
  const auto g = read_all(gg);
  sweep(c, "model.gguf", g, 9000, [](auto& p) {
    auto f = GgufFile::open(p);
    for (auto& t : f.tensors()) f.load_f32(t.name);  // dequantize everything the header claims
  });
  const auto b = read_all(l2);
  sweep(c, "model.bin", b, 64, [](auto& p) { load_llama2c(p); });
  std::printf("[corpus] %d corrupt files, %d rejected with a named error, %d still valid after the edit\n", c.cases,
              c.rejected, c.cases - c.rejected);
  EXPECT_GT(c.cases, 5000);
  EXPECT_GT(c.rejected, c.cases / 3);
}

}  // namespace
