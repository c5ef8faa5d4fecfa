#pragma once
// GGUF (v2/v3) reader over mmap: every metadata value type (incl. nested arrays), tensor infos, alignment, and
// dequantization of tensors to f32 on the CPU. All counts and offsets are validated against the file size before
// anything is allocated, so a hostile file ends in a FormatError naming the file and the key/tensor.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "host/core/tensor.h"
#include "host/util/mapped_file.h"

namespace pocketlora {

enum class GgufValueType : std::uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9, U64 = 10, I64 = 11,
  F64 = 12
};
const char* gguf_value_type_name(GgufValueType t);

enum class GgmlType : std::uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9, Q2_K = 10, Q3_K = 11, Q4_K = 12,
  Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30
};
const char* ggml_type_name(GgmlType t);
// Elements per block and bytes per block; {0, 0} for types this reader does not know.
std::pair<std::int64_t, std::int64_t> ggml_block_layout(GgmlType t);

struct GgufValue {
  GgufValueType type = GgufValueType::U8;
  GgufValueType elem_type = GgufValueType::U8;  // for arrays
  std::variant<std::uint64_t, std::int64_t, double, bool, std::string, std::vector<GgufValue>> v;
};

class GgufFile {
 public:
  struct TensorInfo {
    std::string name;
    std::vector<std::int64_t> ne;  // ggml order: ne[0] is the contiguous (row) dimension
    GgmlType type = GgmlType::F32;
    std::uint64_t offset = 0;      // relative to the data section
    std::size_t nbytes = 0;
    const std::uint8_t* data = nullptr;
    Shape row_major_shape() const;  // ne reversed
  };

  static GgufFile open(const std::filesystem::path& path);

  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  const std::filesystem::path& path() const { return file_->path(); }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }

  bool has(std::string_view key) const;
  const GgufValue& value(std::string_view key) const;  // FormatError naming file + key if absent
  std::string get_string(std::string_view key) const;
  std::uint64_t get_uint(std::string_view key) const;  // any integer type, range-checked
  std::int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;        // f32/f64 (and integers)
  bool get_bool(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;
  std::vector<std::int64_t> get_int_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  // Dequantized to f32, row-major shape (ne reversed).
  Tensor load_f32(std::string_view name) const;
  // The tensor's bytes leave this process's resident set (MappedFile::release_pages): for loaders done with it.
  void release_pages(std::string_view name) const;
  // Rows [first, first + count) (row = every dimension but the outermost) dequantized to f32, then their bytes
  // leave the resident set: a large table converted a chunk at a time (a row is whole quantization blocks).
  Tensor rows_f32(std::string_view name, std::int64_t first, std::int64_t count) const;

 private:
  [[noreturn]] void type_error(std::string_view key, const char* want) const;
  std::shared_ptr<MappedFile> file_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, std::size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

// Dequantizes `n` elements of ggml type `t` from `src` into `dst` (as ggml's dequantize_row_*).
void ggml_dequantize(GgmlType t, const std::uint8_t* src, float* dst, std::int64_t n);

}  // namespace pocketlora
