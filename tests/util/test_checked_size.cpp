// The size helpers every file reader uses: overflow, sign and narrowing failures are typed errors that carry
// the caller's context and the operands; JSON fields of the wrong type name the file and the field.
#include <gtest/gtest.h>

#include <limits>

#include "common/error_message.h"
#include "host/core/checked_size.h"
#include "host/core/tensor.h"
#include "host/util/json_field.h"

using namespace pocketlora;
using pocketlora::test::error_of;

namespace {

TEST(CheckedSize, ProductsThatWrapAreFormatErrorsNamingTheField) {
  const std::uint64_t two62 = std::uint64_t{1} << 62;
  EXPECT_EQ(checked_mul<FormatError>(std::uint64_t{1} << 31, std::uint64_t{1} << 32, "x"), std::uint64_t{1} << 63);
  const std::string msg = error_of<FormatError>([&] { checked_mul(two62, std::uint64_t{8}, "f.safetensors: tensor 'w'"); });
  EXPECT_NE(msg.find("f.safetensors: tensor 'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4611686018427387904 * 8"), std::string::npos) << msg;
  EXPECT_THROW(checked_add(std::numeric_limits<std::size_t>::max() - 3, std::size_t{4}, "offset"), FormatError);
  EXPECT_EQ(checked_add(std::size_t{3}, std::size_t{4}, "offset"), 7u);
}

TEST(CheckedSize, NarrowingRefusesValuesOutsideTheTarget) {
  EXPECT_EQ(checked_narrow<std::int32_t>(std::int64_t{-5}, "x"), -5);
  EXPECT_THROW(checked_narrow<std::int64_t>(std::uint64_t{1} << 63, "dim"), FormatError);
  EXPECT_THROW(checked_narrow<std::size_t>(std::int64_t{-1}, "dim"), FormatError);
  EXPECT_THROW(checked_narrow<std::int32_t>(std::int64_t{1} << 31, "dim"), FormatError);
}

TEST(CheckedSize, NumelAndBytesOfHostileShapes) {
  const std::int64_t two61 = std::int64_t{1} << 61;
  EXPECT_EQ(checked_numel(Shape{2, 3, 0}, "s"), 0);
  EXPECT_EQ(checked_numel(Shape{}, "s"), 1);
  EXPECT_THROW(checked_numel(Shape{4, -1}, "s"), FormatError);
  EXPECT_THROW(checked_numel(Shape{std::int64_t{1} << 32, std::int64_t{1} << 32}, "s"), FormatError);
  // [2^61 + 32] of 8-byte elements: the product is 2^64 + 256, which wrapped to 256 before.
  EXPECT_THROW(checked_nbytes(two61 + 32, 8, "s"), FormatError);
  EXPECT_EQ(checked_nbytes(two61, 4, "s"), std::size_t{1} << 63);
  // The Tensor type checks with ShapeError and never allocates for a shape that overflows.
  EXPECT_THROW(Tensor::zeros({std::int64_t{1} << 62}, DType::F64), ShapeError);
  EXPECT_THROW(shape_numel({-3}), ShapeError);
}

TEST(JsonField, WrongTypesAndMissingFieldsNameTheFileAndField) {
  const auto j = nlohmann::json::parse(R"({"hidden_size": "64", "eps": 1, "tied": null, "big": 18446744073709551615})");
  EXPECT_EQ(error_of<FormatError>([&] { json_field::integer(j, "hidden_size", "config.json"); }),
            "config.json: field 'hidden_size': expected integer, found string");
  EXPECT_EQ(error_of<FormatError>([&] { json_field::integer(j, "layers", "config.json"); }),
            "config.json: missing field 'layers'");
  EXPECT_EQ(json_field::opt_number(j, "eps", "c").value(), 1.0);
  EXPECT_FALSE(json_field::opt_bool(j, "tied", "c").has_value());  // null is absent
  EXPECT_THROW(json_field::integer(j, "big", "c"), FormatError);   // above int64
  EXPECT_THROW(json_field::opt_string(nlohmann::json::array(), "x", "c"), FormatError);
  EXPECT_EQ(error_of<FormatError>([&] { json_field::int_at(nlohmann::json::parse("[1, true]"), 1, "shape", "qs"); }),
            "qs: field 'shape[1]': expected integer, found boolean");
}

}  // namespace
