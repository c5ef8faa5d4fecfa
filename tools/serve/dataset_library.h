#pragma once
// The app's uploaded datasets, DATA/datasets/ (docs/APP.md): an upload is streamed to a temporary file under a
// size limit (never held whole in memory), validated by the data pipeline that training uses (read_records), and
// only then renamed in under its name; anything that fails leaves no file behind.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "host/data/dataset.h"
#include "host/util/atomic_file.h"

namespace pocketlora::serve {

class DatasetLibrary;

// One upload in progress: write() the body's pieces, then finish(). Destroyed unfinished (the client went away,
// too large, malformed): the partial file is removed.
class DatasetUpload {
 public:
  // too_large once more than the library's limit has arrived (the partial file is removed at once).
  void write(const char* data, std::size_t size);
  // Validates and publishes the file; returns its entry. 400 (FormatError / InvalidArgument) naming what is wrong.
  nlohmann::json finish();

 private:
  friend class DatasetLibrary;
  DatasetUpload(DatasetLibrary& lib, std::string name);
  DatasetLibrary& lib_;
  std::string name_;
  std::optional<AtomicFileWriter> file_;
};

class DatasetLibrary {
 public:
  DatasetLibrary(std::filesystem::path dir, std::uint64_t max_upload_bytes);
  const std::filesystem::path& dir() const { return dir_; }
  std::uint64_t max_upload_bytes() const { return max_upload_; }

  // [{"name", "size_bytes", "format", "records", "uploaded"}]; entries that no longer parse have "error".
  nlohmann::json list();
  // A checked name (validate_entry_name) that is free: conflict when a dataset has it.
  std::unique_ptr<DatasetUpload> begin_upload(const std::string& name);
  // not_found naming the dataset.
  std::filesystem::path path(const std::string& name) const;
  // The first `n` records as {"prompt", "response"} text, for a preview.
  static nlohmann::json preview(const std::vector<Record>& records, std::size_t n);
  void remove(const std::string& name);

 private:
  friend class DatasetUpload;
  struct Summary {
    std::uintmax_t size = 0;
    std::filesystem::file_time_type mtime;
    nlohmann::json entry;
  };
  nlohmann::json entry(const std::filesystem::path& file);  // with mu_ held
  std::filesystem::path dir_, incoming_;
  std::uint64_t max_upload_;
  std::mutex mu_;
  std::map<std::string, Summary> summaries_;  // by name, under mu_
};

}  // namespace pocketlora::serve
