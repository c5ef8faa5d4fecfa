// Inputs that broke the parsers' error contract under the libFuzzer targets (fuzz/, docs/FUZZING.md): each
// must now end in a typed FormatError that names the file, never another exception type or a crash.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <typeinfo>

#include "host/model/bnb4bit.h"
#include "host/model/safetensors.h"
#include "host/model/tokenizer.h"
#include "host/util/error.h"
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
