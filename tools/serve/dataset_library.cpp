#include "tools/serve/dataset_library.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "host/core/error.h"
#include "host/infer/text_stream.h"
#include "host/util/entry_name.h"
#include "host/util/read_file.h"
#include "tools/serve/app_error.h"

namespace pocketlora::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The format read_records detected, from what it made of the first record.
const char* detected_format(const std::vector<Record>& records) {
  if (records.empty()) return "unknown";
  if (records.front().alpaca) return "alpaca";
  return records.front().messages.empty() ? "text" : "chat";
}

std::string iso8601(fs::file_time_type t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(std::chrono::file_clock::to_sys(t));
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Every format the data pipeline reads is UTF-8 text: a binary file would otherwise pass as a plain-text dataset.
void check_text(const fs::path& file, const std::string& name) {
  const std::string bytes = read_file_text(file);
  if (bytes.find('\0') != std::string::npos)
    throw FormatError(fmt::format("dataset '{}': binary data (a NUL byte at offset {}): expected Alpaca JSON/JSONL, "
                                  "chat JSONL or UTF-8 text", name, bytes.find('\0')));
  if (sanitize_utf8(bytes) != bytes)
    throw FormatError(fmt::format("dataset '{}': not valid UTF-8: expected Alpaca JSON/JSONL, chat JSONL or UTF-8 "
                                  "text", name));
}

}  // namespace

DatasetUpload::DatasetUpload(DatasetLibrary& lib, std::string name) : lib_(lib), name_(std::move(name)) {
  file_.emplace(lib_.incoming_ / name_);
}

void DatasetUpload::write(const char* data, std::size_t size) {
  if (!file_) throw InternalError("dataset upload: write after the upload ended");
  if (file_->bytes_written() + size > lib_.max_upload_) {
    file_.reset();  // the partial file goes now, not when the client is done sending
    throw too_large(fmt::format("dataset '{}': larger than the upload limit of {} bytes (serve --max-upload)", name_,
                                lib_.max_upload_));
  }
  file_->write(data, size);
}

json DatasetUpload::finish() {
  if (!file_) throw InternalError("dataset upload: finished twice");
  const fs::path staged = lib_.incoming_ / name_, target = lib_.dir_ / name_;
  file_->commit();
  file_.reset();
  try {
    check_text(staged, name_);
    const std::vector<Record> records = read_records(staged);
    if (records.empty()) throw FormatError(fmt::format("dataset '{}': no records", name_));
    // link(2) publishes the validated file under its name and fails if the name was taken meanwhile.
    if (::link(staged.c_str(), target.c_str()) != 0) {
      if (errno == EEXIST) throw conflict(fmt::format("dataset '{}' already exists", name_));
      throw IoError(fmt::format("cannot publish '{}': {}", target.string(), std::strerror(errno)));
    }
  } catch (...) {
    std::error_code ec;
    fs::remove(staged, ec);
    throw;
  }
  std::error_code ec;
  fs::remove(staged, ec);
  std::lock_guard lock(lib_.mu_);
  return lib_.entry(target);
}

DatasetLibrary::DatasetLibrary(fs::path dir, std::uint64_t max_upload_bytes)
    : dir_(std::move(dir)), incoming_(dir_ / ".incoming"), max_upload_(max_upload_bytes) {
  std::error_code ec;
  fs::create_directories(incoming_, ec);
  if (ec) throw IoError(fmt::format("cannot create '{}': {}", incoming_.string(), ec.message()));
  // Uploads a killed server left behind.
  for (const auto& e : fs::directory_iterator(incoming_, ec)) fs::remove_all(e.path(), ec);
}

json DatasetLibrary::entry(const fs::path& file) {
  std::error_code ec;
  const std::string name = file.filename().string();
  const std::uintmax_t size = fs::file_size(file, ec);
  const auto mtime = fs::last_write_time(file, ec);
  if (auto it = summaries_.find(name); it != summaries_.end() && it->second.size == size && it->second.mtime == mtime)
    return it->second.entry;
  json j = {{"name", name}, {"size_bytes", size}, {"uploaded", iso8601(mtime)}};
  try {
    const std::vector<Record> records = read_records(file);
    j["format"] = detected_format(records);
    j["records"] = records.size();
  } catch (const Error& e) {
    j["error"] = e.what();
  }
  summaries_[name] = {size, mtime, j};
  return j;
}

json DatasetLibrary::list() {
  std::lock_guard lock(mu_);
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file(ec) && !n.starts_with(".") && !is_atomic_temp_name(n)) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  json out = json::array();
  for (const auto& f : files) out.push_back(entry(f));
  return out;
}

std::unique_ptr<DatasetUpload> DatasetLibrary::begin_upload(const std::string& name) {
  validate_entry_name("dataset", name);
  std::error_code ec;
  if (fs::exists(dir_ / name, ec)) throw conflict(fmt::format("dataset '{}' already exists", name));
  if (fs::exists(incoming_ / name, ec)) throw conflict(fmt::format("dataset '{}' is being uploaded", name));
  return std::unique_ptr<DatasetUpload>(new DatasetUpload(*this, name));
}

fs::path DatasetLibrary::path(const std::string& name) const {
  try {
    validate_entry_name("dataset", name);
  } catch (const InvalidArgument& e) {
    throw not_found(fmt::format("dataset '{}' not found ({})", name, e.what()));
  }
  std::error_code ec;
  if (!fs::is_regular_file(dir_ / name, ec))
    throw not_found(fmt::format("dataset '{}' not found in {}", name, dir_.string()));
  return dir_ / name;
}

json DatasetLibrary::preview(const std::vector<Record>& records, std::size_t n) {
  constexpr std::size_t kMaxText = 400;
  auto cut = [](const std::string& s) {
    return s.size() <= kMaxText ? s : s.substr(0, complete_utf8_prefix(s.substr(0, kMaxText))) + "…";
  };
  json out = json::array();
  for (std::size_t i = 0; i < std::min(n, records.size()); ++i) {
    const Record& r = records[i];
    std::string prompt, response;
    if (r.alpaca) {
      prompt = r.alpaca_instruction + (r.alpaca_input.empty() ? "" : "\n\n" + r.alpaca_input);
      response = r.alpaca_output;
    } else if (!r.messages.empty()) {
      for (const auto& m : r.messages) {
        if (m.role == "assistant") {
          response = m.content;
          break;
        }
        prompt += (prompt.empty() ? "" : "\n") + m.content;
      }
    } else {
      response = r.text;
    }
    out.push_back({{"prompt", cut(prompt)}, {"response", cut(response)}});
  }
  return out;
}

void DatasetLibrary::remove(const std::string& name) {
  const fs::path p = path(name);
  std::lock_guard lock(mu_);
  std::error_code ec;
  if (!fs::remove(p, ec) || ec) throw IoError(fmt::format("cannot remove '{}': {}", p.string(), ec.message()));
  summaries_.erase(name);
}

}  // namespace pocketlora::serve
