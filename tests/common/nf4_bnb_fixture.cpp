#include "common/nf4_bnb_fixture.h"

namespace pocketlora::test {

std::span<const float> Nf4BnbCase::input_values() const {
  return {input.data<float>(), static_cast<std::size_t>(input.numel())};
}

std::span<const std::uint8_t> Nf4BnbCase::expected_bytes(const std::string& suffix) const {
  const auto& info = expected.at("weight" + suffix);
  return {info.data, info.nbytes};
}

Nf4BnbCase load_nf4_bnb_case(const std::filesystem::path& dir, const std::string& name) {
  Nf4BnbCase c{name, SafetensorsFile::open(dir / (name + ".input.safetensors")).tensor("input"),
               SafetensorsFile::open(dir / (name + ".dequant.safetensors")).tensor("dequant"),
               SafetensorsFile::open(dir / (name + ".expected.safetensors"))};
  c.double_quant = c.expected.find("weight.nested_absmax") != nullptr;
  return c;
}

::testing::AssertionResult same_bytes(std::span<const std::uint8_t> got, std::span<const std::uint8_t> want) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << got.size() << " bytes, expected " << want.size();
  std::size_t first = got.size(), count = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i]) {
      if (count++ == 0) first = i;
    }
  if (count == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << count << " of " << got.size() << " bytes differ, first at byte " << first
                                       << ": got 0x" << std::hex << int{got[first]} << ", expected 0x"
                                       << int{want[first]};
}

}  // namespace pocketlora::test
