#include "host/formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "host/core/checked_size.h"
#include "host/core/error.h"
#include "host/util/atomic_file.h"

namespace pocketlora {

namespace {

// The format has no hard cap on the header; 100 MB is far beyond any real model's (~1 KB per tensor) and
// stops a hostile length field from making us allocate or parse gigabytes.
constexpr std::uint64_t kMaxHeader = 100ull << 20;

std::optional<DType> to_dtype(std::string_view s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "F64") return DType::F64;
  if (s == "I8") return DType::I8;
  if (s == "U8") return DType::U8;
  if (s == "I32") return DType::I32;
  if (s == "I64") return DType::I64;
  return std::nullopt;
}

[[noreturn]] void fail(const std::filesystem::path& p, const std::string& what) {
  throw FormatError("safetensors file '" + p.string() + "': " + what);
}

}  // namespace

std::size_t safetensors_dtype_size(std::string_view d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "U8" || d == "I8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
  }
  return "?";
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile f;
  f.file_ = std::make_shared<MappedFile>(path);
  const std::uint8_t* base = f.file_->data();
  const std::size_t size = f.file_->size();
  if (size < 8) fail(path, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  std::uint64_t hlen;
  std::memcpy(&hlen, base, 8);
  if (hlen > size - 8)
    fail(path, "header length " + std::to_string(hlen) + " exceeds the file size (" + std::to_string(size) + " bytes)");
  if (hlen > kMaxHeader) fail(path, "header length " + std::to_string(hlen) + " exceeds the 100 MB sanity limit");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(base + 8, base + 8 + hlen);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!h.is_object()) fail(path, "header is not a JSON object");
  const std::uint8_t* data = base + 8 + hlen;
  const std::uint64_t data_size = size - 8 - hlen;
  struct Span {
    std::uint64_t begin, end;
    std::size_t index;
  };
  std::vector<Span> spans;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (!it->is_object()) fail(path, "__metadata__ must be an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) fail(path, "__metadata__ value for '" + m.key() + "' is not a string");
        f.metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const auto& v = *it;
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      fail(path, "tensor '" + name + "' needs dtype, shape and data_offsets");
    if (!v["dtype"].is_string()) fail(path, "tensor '" + name + "': dtype is not a string");
    Info info;
    info.name = name;
    info.dtype = v["dtype"].get<std::string>();
    const std::size_t esize = safetensors_dtype_size(info.dtype);
    if (esize == 0) fail(path, "tensor '" + name + "': unknown dtype '" + info.dtype + "'");
    const auto& shp = v["shape"];
    if (!shp.is_array() || shp.size() > 8) fail(path, "tensor '" + name + "': shape must be an array of <= 8 dims");
    const std::string what = "safetensors file '" + path.string() + "': tensor '" + name + "'";
    for (auto& d : shp) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<std::int64_t>() >= 0))
        fail(path, "tensor '" + name + "': shape entries must be non-negative integers, found " + d.dump());
      info.shape.push_back(checked_narrow<std::int64_t>(d.get<std::uint64_t>(), what + " shape"));
    }
    const std::size_t expected_bytes = checked_nbytes(checked_numel(info.shape, what + " shape " + shape_str(info.shape)),
                                                      esize, what + " shape " + shape_str(info.shape) + " of " + info.dtype);
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(path, "tensor '" + name + "': data_offsets must be two non-negative integers");
    const auto b = off[0].get<std::uint64_t>(), e = off[1].get<std::uint64_t>();
    if (b > e || e > data_size)
      fail(path, "tensor '" + name + "': data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                     ") outside the " + std::to_string(data_size) + "-byte data section");
    if (e - b != expected_bytes)
      fail(path, "tensor '" + name + "': " + std::to_string(e - b) + " bytes for shape " + shape_str(info.shape) +
                     " of " + info.dtype + " (expected " + std::to_string(expected_bytes) + ")");
    info.data = data + b;
    info.nbytes = static_cast<std::size_t>(e - b);
    spans.push_back({b, e, f.infos_.size()});
    f.infos_.push_back(std::move(info));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& c) { return a.begin < c.begin; });
  std::uint64_t cursor = 0;
  for (auto& s : spans) {
    if (s.begin < cursor)
      fail(path, "tensor '" + f.infos_[s.index].name + "' overlaps the previous tensor (offset " +
                     std::to_string(s.begin) + " < " + std::to_string(cursor) + ")");
    if (s.begin > cursor && s.end != s.begin)
      fail(path, "gap of " + std::to_string(s.begin - cursor) + " bytes before tensor '" + f.infos_[s.index].name + "'");
    cursor = std::max(cursor, s.end);
  }
  if (cursor != data_size)
    fail(path, "data section is " + std::to_string(data_size) + " bytes but tensors cover " + std::to_string(cursor));
  // Keep the file's tensor order (by offset) for listing.
  std::vector<Info> ordered;
  for (auto& s : spans) ordered.push_back(f.infos_[s.index]);
  f.infos_ = std::move(ordered);
  for (std::size_t i = 0; i < f.infos_.size(); ++i) f.index_[f.infos_[i].name] = i;
  return f;
}

const SafetensorsFile::Info* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &infos_[it->second];
}

const SafetensorsFile::Info& SafetensorsFile::at(std::string_view name) const {
  if (const Info* i = find(name)) return *i;
  throw FormatError("safetensors file '" + path().string() + "' has no tensor '" + std::string(name) + "'");
}

void SafetensorsFile::release_pages(std::string_view name) const {
  const Info& i = at(name);
  file_->release_pages({i.data, i.nbytes});
}

Tensor SafetensorsFile::tensor(std::string_view name) const {
  const Info& i = at(name);
  auto dt = to_dtype(i.dtype);
  if (!dt)
    throw FormatError("safetensors file '" + path().string() + "': tensor '" + i.name + "' has dtype " + i.dtype +
                      ", which PocketLoRA tensors do not support");
  return Tensor::view(const_cast<std::uint8_t*>(i.data), i.shape, *dt, file_);
}

Tensor SafetensorsFile::rows_f32(std::string_view name, std::int64_t first, std::int64_t count) const {
  const Tensor rows = tensor(name).slice_rows(first, first + count);
  Tensor f = rows.to(DType::F32);
  file_->release_pages({static_cast<const std::uint8_t*>(rows.raw()), rows.nbytes()});
  return f;
}

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::filesystem::path& path) {
  SafetensorsCheckpoint c;
  c.path_ = path;
  std::filesystem::path p = path;
  if (std::filesystem::is_directory(p)) {
    if (std::filesystem::exists(p / "model.safetensors.index.json")) p = p / "model.safetensors.index.json";
    else if (std::filesystem::exists(p / "model.safetensors")) p = p / "model.safetensors";
    else throw IoError("'" + path.string() + "' holds neither model.safetensors nor model.safetensors.index.json");
  }
  if (p.extension() == ".json") {
    nlohmann::json idx;
    try {
      std::ifstream in(p);
      if (!in) throw IoError("cannot open '" + p.string() + "'");
      idx = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError("safetensors index '" + p.string() + "' is not valid JSON: " + e.what());
    }
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw FormatError("safetensors index '" + p.string() + "' has no weight_map object");
    std::map<std::string, std::size_t> shard_index;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it->is_string()) throw FormatError("safetensors index '" + p.string() + "': weight_map['" + it.key() + "'] is not a string");
      const std::string file = it->get<std::string>();
      if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
        throw FormatError("safetensors index '" + p.string() + "': shard name '" + file + "' must be a plain file name");
      if (!shard_index.count(file)) {
        shard_index[file] = c.shards_.size();
        c.shards_.push_back(SafetensorsFile::open(p.parent_path() / file));
      }
      const auto& shard = c.shards_[shard_index[file]];
      if (!shard.find(it.key()))
        throw FormatError("safetensors index '" + p.string() + "' maps tensor '" + it.key() + "' to '" + file +
                          "', which does not contain it");
      c.where_[it.key()] = shard_index[file];
    }
  } else {
    c.shards_.push_back(SafetensorsFile::open(p));
    for (auto& i : c.shards_[0].tensors()) c.where_[i.name] = 0;
  }
  return c;
}

const SafetensorsFile* SafetensorsCheckpoint::shard_of(std::string_view name) const {
  auto it = where_.find(name);
  return it == where_.end() ? nullptr : &shards_[it->second];
}

std::vector<const SafetensorsFile::Info*> SafetensorsCheckpoint::tensors() const {
  std::vector<const SafetensorsFile::Info*> v;
  for (auto& [name, s] : where_) v.push_back(shards_[s].find(name));
  return v;
}

const SafetensorsFile::Info* SafetensorsCheckpoint::find(std::string_view name) const {
  const SafetensorsFile* s = shard_of(name);
  return s ? s->find(name) : nullptr;
}

const SafetensorsFile::Info& SafetensorsCheckpoint::at(std::string_view name) const {
  if (const auto* i = find(name)) return *i;
  throw FormatError("safetensors checkpoint '" + path_.string() + "' has no tensor '" + std::string(name) + "'");
}

void SafetensorsCheckpoint::release_pages(std::string_view name) const {
  const SafetensorsFile* s = shard_of(name);
  if (!s) throw FormatError("safetensors checkpoint '" + path_.string() + "' has no tensor '" + std::string(name) + "'");
  s->release_pages(name);
}

Tensor SafetensorsCheckpoint::rows_f32(std::string_view name, std::int64_t first, std::int64_t count) const {
  const SafetensorsFile* s = shard_of(name);
  if (!s) throw FormatError("safetensors checkpoint '" + path_.string() + "' has no tensor '" + std::string(name) + "'");
  return s->rows_f32(name, first, count);
}

Tensor SafetensorsCheckpoint::tensor(std::string_view name) const {
  const SafetensorsFile* s = shard_of(name);
  if (!s) throw FormatError("safetensors checkpoint '" + path_.string() + "' has no tensor '" + std::string(name) + "'");
  return s->tensor(name);
}

void write_safetensors(const std::filesystem::path& path, const std::vector<SafetensorsEntry>& entries,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json h = nlohmann::json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (auto& e : entries) {
    const std::size_t es = safetensors_dtype_size(e.dtype);
    if (es == 0) throw InvalidArgument("write_safetensors: tensor '" + e.name + "' has unknown dtype '" + e.dtype + "'");
    if (static_cast<std::uint64_t>(shape_numel(e.shape)) * es != e.bytes.size())
      throw ShapeError("write_safetensors: tensor '" + e.name + "' shape " + shape_str(e.shape) + " of " + e.dtype +
                       " needs " + std::to_string(shape_numel(e.shape) * static_cast<std::int64_t>(es)) +
                       " bytes, got " + std::to_string(e.bytes.size()));
    if (h.contains(e.name)) throw InvalidArgument("write_safetensors: duplicate tensor name '" + e.name + "'");
    h[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  std::string header = h.dump();  // nlohmann sorts object keys: deterministic output
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::uint64_t hlen = header.size();
  AtomicFileWriter w(path);
  w.write(&hlen, 8);
  w.write(header);
  for (auto& e : entries) w.write(e.bytes.data(), e.bytes.size());
  w.commit();
}

void write_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> contiguous;
  std::vector<SafetensorsEntry> entries;
  contiguous.reserve(tensors.size());
  for (auto& [name, t] : tensors) {
    contiguous.push_back(t.is_contiguous() ? t : t.clone());
    const Tensor& c = contiguous.back();
    entries.push_back({name, safetensors_dtype_name(c.dtype()), c.shape(),
                       {static_cast<const std::uint8_t*>(c.raw()), c.nbytes()}});
  }
  write_safetensors(path, entries, metadata);
}

}  // namespace pocketlora
