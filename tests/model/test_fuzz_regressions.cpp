// Inputs that broke the parsers' error contract under the libFuzzer targets (fuzz/, docs/FUZZING.md): each
// must now end in a typed FormatError that names the file, never another exception type or a crash.
#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <fstream>
#include <string>
#include <typeinfo>

#include "host/core/error.h"
#include "host/formats/safetensors.h"
#include "host/model/bnb4bit.h"
#include "host/model/llama2c.h"
#include "host/tokenizer/tokenizer.h"
#include "tests/common/test_data.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

void expect_format_error_naming_file(const TempDir& tmp, const std::string& name, const std::string& bytes) {
  const auto p = tmp / name;
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  try {
    (void)load_tokenizer(p);
    FAIL() << name << ": loaded, expected a FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    FAIL() << name << ": " << typeid(e).name() << " instead of FormatError: " << e.what();
  }
}

}  // namespace

// tokenizer.json fields of the wrong type escaped as nlohmann::json::type_error (fuzz_tokenizer_json).
TEST(FuzzRegressions, TokenizerJsonFieldOfWrongType) {
  TempDir tmp;
  expect_format_error_naming_file(tmp, "pre-type-number.json", R"({"pre_tokenizer": {"type": 1}})");
  expect_format_error_naming_file(tmp, "pretokenizer-entry-type-number.json",
                                  R"({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": 1}]}})");
}

// A bnb-4bit quant_state that is valid JSON but not an object ("1") escaped as nlohmann::json::type_error
// (fuzz_bnb4bit, a mutated quant_state byte of the tiny NF4 seed).
TEST(FuzzRegressions, Bnb4bitQuantStateNotAnObject) {
  TempDir tmp;
  std::ofstream(tmp / "config.json") << R"({"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
    "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 16})";
  const std::string state = "1";
  write_safetensors(tmp / "model.safetensors",
                    std::vector<SafetensorsEntry>{{"model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4", "U8",
                                                   {static_cast<std::int64_t>(state.size())},
                                                   {reinterpret_cast<const std::uint8_t*>(state.data()), state.size()}}});
  try {
    (void)load_bnb4bit(tmp.path());
    FAIL() << "loaded, expected a FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("up_proj"), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    FAIL() << typeid(e).name() << " instead of FormatError: " << e.what();
  }
}

// A llama2.c v0 header with vocab_size INT32_MIN: negating it (the untied-classifier marker) overflowed int32,
// undefined behaviour UBSan reports in CI's sanitizer build (fuzz_llama2c, minimised to the 28-byte header).
TEST(FuzzRegressions, Llama2cVocabSizeInt32Min) {
  TempDir tmp;
  const std::int32_t header[7] = {8, 16, 1, 2, 1, INT32_MIN, 16};
  std::ofstream(tmp / "min-vocab.bin", std::ios::binary).write(reinterpret_cast<const char*>(header), sizeof header);
  try {
    (void)load_llama2c(tmp / "min-vocab.bin");
    FAIL() << "loaded, expected a FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("min-vocab.bin"), std::string::npos) << e.what();
  }
}
