#pragma once
// The bitsandbytes NF4 reference cases in ../shared/data/nf4-bnb (see its README.md): for each case the f32
// input, the state dict bitsandbytes saves for it and what dequantize_4bit returns. Produced outside this
// project, so they are expected values the code under test did not compute.
#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "host/core/tensor.h"
#include "host/formats/safetensors.h"

namespace pocketlora::test {

inline constexpr const char* kNf4BnbDir = "nf4-bnb";
inline constexpr const char* kNf4BnbCases[] = {"s0_64x172", "s1_64x172", "s0_172x64", "s1_172x64", "s0_256x256",
                                              "s1_256x256", "s0_3x5",    "s1_3x5",    "s0_64x172_nodq"};

struct Nf4BnbCase {
  std::string name;
  Tensor input;    // f32, the weight bitsandbytes quantized
  Tensor dequant;  // f32, dequantize_4bit of the expected state
  SafetensorsFile expected;
  bool double_quant = false;  // the state dict has nested_* entries

  std::span<const float> input_values() const;
  // Bytes of expected tensor "weight" + suffix (FormatError naming the file if absent).
  std::span<const std::uint8_t> expected_bytes(const std::string& suffix) const;
};

// Opens case `name` from `dir` (the nf4-bnb folder).
Nf4BnbCase load_nf4_bnb_case(const std::filesystem::path& dir, const std::string& name);

// Byte-for-byte comparison that names the first differing byte and the total count of differences.
::testing::AssertionResult same_bytes(std::span<const std::uint8_t> got, std::span<const std::uint8_t> want);

template <typename T> std::span<const std::uint8_t> as_bytes_of(const std::vector<T>& v) {
  return {reinterpret_cast<const std::uint8_t*>(v.data()), v.size() * sizeof(T)};
}

}  // namespace pocketlora::test
