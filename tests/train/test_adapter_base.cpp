// adapter_base: the model's shape and q/k layout, and the fingerprint for the quantization the adapter was
// trained with, spelled as the trainer spells it ("f32" is "none").
#include <gtest/gtest.h>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/train/adapter_base.h"
#include "host/train/base_fingerprint.h"

namespace pocketlora {
namespace {

TEST(AdapterBase, FingerprintForTheTrainingQuantization) {
  POCKETLORA_REQUIRE_DATA(path, "models/stories260K/stories260K.bin");
  const LlamaModel model = load_llama_model(path, BaseQuant::None);
  const AdapterBase nf4 = adapter_base(model, path, "nf4");
  EXPECT_EQ(nf4.config.dim, 64);
  EXPECT_EQ(nf4.qk_layout, RopeLayout::Interleaved);
  EXPECT_EQ(nf4.base_quant, "nf4");
  EXPECT_EQ(nf4.fingerprint, base_model_fingerprint(path, "nf4"));
  EXPECT_EQ(nf4.model_name, "stories260K.bin");
  const AdapterBase f32 = adapter_base(model, path, "f32");
  EXPECT_EQ(f32.base_quant, "none");
  EXPECT_EQ(f32.fingerprint, base_model_fingerprint(path, "none"));
  EXPECT_NE(f32.fingerprint, nf4.fingerprint);
  EXPECT_TRUE(test::mentions(test::error_of<InvalidArgument>([&] { adapter_base(model, path, "q4"); }), {"'q4'"}));
}

}  // namespace
}  // namespace pocketlora
