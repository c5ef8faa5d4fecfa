#pragma once
// safetensors reader over mmap (tensor bytes are not copied until asked for) and writer (atomic), plus sharded
// checkpoints (model.safetensors.index.json). Every header field is validated against the file: header length,
// JSON, dtypes, shapes, data_offsets inside the data section, sorted, non-overlapping and covering it exactly.
// Errors are FormatError/IoError naming the file and the tensor/field.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "host/core/tensor.h"
#include "host/util/mapped_file.h"

namespace pocketlora {

class SafetensorsFile {
 public:
  struct Info {
    std::string name;
    std::string dtype;  // as in the file: "F32", "F16", "BF16", "U8", "I8", "I32", "I64", ...
    Shape shape;
    const std::uint8_t* data = nullptr;
    std::size_t nbytes = 0;
  };

  static SafetensorsFile open(const std::filesystem::path& path);

  const std::vector<Info>& tensors() const { return infos_; }
  const Info* find(std::string_view name) const;  // nullptr if absent
  const Info& at(std::string_view name) const;    // FormatError naming file + tensor if absent
  // View over the mapped bytes (kept alive by the returned Tensor); FormatError for dtypes Tensor lacks.
  Tensor tensor(std::string_view name) const;
  // The tensor's bytes leave this process's resident set (MappedFile::release_pages): for loaders done with it.
  void release_pages(std::string_view name) const;
  // Rows [first, first + count) of a float tensor converted to f32, then their bytes leave the resident set: a
  // large table converted a chunk at a time, never whole.
  Tensor rows_f32(std::string_view name, std::int64_t first, std::int64_t count) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return file_->path(); }

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<Info> infos_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// One file, a sharded checkpoint's index.json, or a directory holding either.
class SafetensorsCheckpoint {
 public:
  static SafetensorsCheckpoint open(const std::filesystem::path& path);
  std::vector<const SafetensorsFile::Info*> tensors() const;
  const SafetensorsFile::Info* find(std::string_view name) const;
  const SafetensorsFile::Info& at(std::string_view name) const;
  Tensor tensor(std::string_view name) const;
  void release_pages(std::string_view name) const;
  Tensor rows_f32(std::string_view name, std::int64_t first, std::int64_t count) const;
  const std::vector<SafetensorsFile>& shards() const { return shards_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  const SafetensorsFile* shard_of(std::string_view name) const;
  std::filesystem::path path_;
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, std::size_t, std::less<>> where_;
};

struct SafetensorsEntry {
  std::string name;
  std::string dtype;
  Shape shape;
  std::span<const std::uint8_t> bytes;
};

// Writes atomically; tensors are laid out in the given order; header keys sorted (deterministic), padded with
// spaces to a multiple of 8 bytes as the format requires.
void write_safetensors(const std::filesystem::path& path, const std::vector<SafetensorsEntry>& entries,
                       const std::map<std::string, std::string>& metadata = {});
void write_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

std::size_t safetensors_dtype_size(std::string_view dtype);  // 0 if unknown
const char* safetensors_dtype_name(DType t);

}  // namespace pocketlora
