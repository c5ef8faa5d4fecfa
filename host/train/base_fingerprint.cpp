#include "host/train/base_fingerprint.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <vector>

#include "host/core/error.h"
#include "host/util/sha256.h"

namespace pocketlora {

namespace {

constexpr std::uint64_t kEdgeBytes = 1u << 20;
constexpr std::uint64_t kSampleBytes = 64u << 10;
constexpr int kSamples = 16;

bool is_model_file(const std::filesystem::path& p) {
  const std::string name = p.filename().string();
  const auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return name == "config.json" || ends(".safetensors") || ends(".safetensors.index.json") || ends(".gguf") ||
         ends(".bin");
}

std::vector<std::filesystem::path> model_files(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return {path};
  if (!std::filesystem::is_directory(path, ec))
    throw IoError("base model fingerprint: '" + path.string() + "' is neither a file nor a directory");
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(path))
    if (e.is_regular_file() && is_model_file(e.path())) files.push_back(e.path());
  if (files.empty())
    throw IoError("base model fingerprint: directory '" + path.string() +
                  "' holds no model file (config.json, *.safetensors, *.gguf, *.bin)");
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.filename() < b.filename(); });
  return files;
}

void hash_range(Sha256& h, std::ifstream& in, const std::filesystem::path& p, std::uint64_t offset, std::uint64_t n) {
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(std::min<std::uint64_t>(n, kEdgeBytes)));
  in.seekg(static_cast<std::streamoff>(offset));
  while (n > 0) {
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n, buf.size()));
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(take));
    if (!in) throw IoError("base model fingerprint: cannot read '" + p.string() + "' at offset " + std::to_string(offset));
    h.update({buf.data(), take});
    n -= take;
    offset += take;
  }
}

}  // namespace

std::string base_model_fingerprint(const std::filesystem::path& model_path, std::string_view base_quant) {
  Sha256 h;
  for (const auto& p : model_files(model_path)) {
    const std::uint64_t size = std::filesystem::file_size(p);
    std::ifstream in(p, std::ios::binary);
    if (!in) throw IoError("base model fingerprint: cannot open '" + p.string() + "'");
    h.update("file " + p.filename().string() + " " + std::to_string(size) + "\n");
    if (size <= 2 * kEdgeBytes + kSampleBytes * kSamples) {
      hash_range(h, in, p, 0, size);
      continue;
    }
    hash_range(h, in, p, 0, kEdgeBytes);
    const std::uint64_t middle = size - 2 * kEdgeBytes;  // samples stay clear of both edges
    for (int i = 0; i < kSamples; ++i)
      hash_range(h, in, p, kEdgeBytes + (middle - kSampleBytes) * static_cast<std::uint64_t>(i) / (kSamples - 1),
                 kSampleBytes);
    hash_range(h, in, p, size - kEdgeBytes, kEdgeBytes);
  }
  h.update("quant " + std::string(base_quant) + "\n");
  return "sampled-sha256-v1:" + h.hex_digest();
}

}  // namespace pocketlora
