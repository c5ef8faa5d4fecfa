#pragma once
// GGUF v3 writer (used for GGUF-LoRA adapters and merged models): metadata of every value type, tensors as
// F32 / F16 from Tensors or as raw bytes of any ggml type, aligned data section (general.alignment, default 32),
// written atomically.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "host/formats/gguf.h"

namespace pocketlora {

class GgufWriter {
 public:
  void set(const std::string& key, GgufValue value);
  void set_string(const std::string& key, const std::string& v);
  void set_u32(const std::string& key, std::uint32_t v);
  void set_i32(const std::string& key, std::int32_t v);
  void set_u64(const std::string& key, std::uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  void set_i32_array(const std::string& key, const std::vector<std::int32_t>& v);

  // Row-major f32 / f16 tensor (ne is the reversed shape).
  void add_tensor(const std::string& name, const Tensor& t);
  // Raw bytes of any known ggml type; ne in ggml order; size checked against the block layout.
  void add_raw_tensor(const std::string& name, GgmlType type, std::vector<std::int64_t> ne, std::vector<std::uint8_t> bytes);

  void write(const std::filesystem::path& path) const;

 private:
  struct Pending {
    std::string name;
    GgmlType type;
    std::vector<std::int64_t> ne;
    std::vector<std::uint8_t> bytes;
  };
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Pending> tensors_;
};

}  // namespace pocketlora
