// `pocketlora export` as a user runs it: PEFT -> GGUF LoRA -> merged Q8_0 GGUF that `pocketlora forward` loads,
// and a wrong --dtype refused with the option named and exit status 1.
#include <gtest/gtest.h>

#include "common/run_cli.h"
#include "common/test_data.h"
#include "host/adapters/peft_export.h"
#include "host/formats/gguf.h"
#include "host/model/llama_weights.h"

namespace pocketlora {
namespace {

TEST(ExportCli, AdapterToGgufThenMergedQ8) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  const LlamaConfig c = load_llama_weights(bin).config;
  PeftAdapter a;
  a.config.r = 2;
  a.config.targets = {"v", "down"};
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    a.tensors.emplace_back(p + "v.A", Tensor::zeros({2, c.dim}));
    a.tensors.emplace_back(p + "v.B", Tensor::zeros({c.kv_dim(), 2}));
    a.tensors.emplace_back(p + "down.A", Tensor::zeros({2, c.hidden_dim}));
    a.tensors.emplace_back(p + "down.B", Tensor::zeros({c.dim, 2}));
  }
  write_peft_adapter(tmp / "peft", a, c, RopeLayout::Interleaved);
  const std::string base = "--model " + bin.string() + " ";
  auto r = test::run_cli("export " + base + "--adapter " + (tmp / "peft").string() + " --format gguf --out " +
                         (tmp / "a.gguf").string());
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("GGUF LoRA adapter"), std::string::npos) << r.out;
  EXPECT_EQ(GgufFile::open(tmp / "a.gguf").tensors().size(), 20u);
  r = test::run_cli("export " + base + "--adapter " + (tmp / "a.gguf").string() + " --format merged --dtype q8_0 --out " +
                    (tmp / "m.gguf").string());
  ASSERT_EQ(r.rc, 0) << r.out;
  r = test::run_cli("forward --model " + (tmp / "m.gguf").string() + " --tokens 1,403");
  EXPECT_EQ(r.rc, 0) << r.out;
  r = test::run_cli("export " + base + "--adapter " + (tmp / "peft").string() + " --format merged --dtype q5_1 --out " +
                    (tmp / "x.gguf").string());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("--dtype 'q5_1'"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pocketlora
