#include "host/formats/gguf.h"

#include <cstring>
#include <limits>

#include "host/core/checked_size.h"
#include "host/core/error.h"
#include "host/core/half.h"

namespace pocketlora {

const char* gguf_value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8: return "uint8";
    case GgufValueType::I8: return "int8";
    case GgufValueType::U16: return "uint16";
    case GgufValueType::I16: return "int16";
    case GgufValueType::U32: return "uint32";
    case GgufValueType::I32: return "int32";
    case GgufValueType::F32: return "float32";
    case GgufValueType::Bool: return "bool";
    case GgufValueType::String: return "string";
    case GgufValueType::Array: return "array";
    case GgufValueType::U64: return "uint64";
    case GgufValueType::I64: return "int64";
    case GgufValueType::F64: return "float64";
  }
  return "?";
}

const char* ggml_type_name(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::Q4_0: return "Q4_0";
    case GgmlType::Q4_1: return "Q4_1";
    case GgmlType::Q5_0: return "Q5_0";
    case GgmlType::Q5_1: return "Q5_1";
    case GgmlType::Q8_0: return "Q8_0";
    case GgmlType::Q8_1: return "Q8_1";
    case GgmlType::Q2_K: return "Q2_K";
    case GgmlType::Q3_K: return "Q3_K";
    case GgmlType::Q4_K: return "Q4_K";
    case GgmlType::Q5_K: return "Q5_K";
    case GgmlType::Q6_K: return "Q6_K";
    case GgmlType::Q8_K: return "Q8_K";
    case GgmlType::BF16: return "BF16";
  }
  return "unknown";
}

std::pair<std::int64_t, std::int64_t> ggml_block_layout(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return {1, 4};
    case GgmlType::F16: return {1, 2};
    case GgmlType::BF16: return {1, 2};
    case GgmlType::Q4_0: return {32, 18};
    case GgmlType::Q4_1: return {32, 20};
    case GgmlType::Q5_0: return {32, 22};
    case GgmlType::Q5_1: return {32, 24};
    case GgmlType::Q8_0: return {32, 34};
    case GgmlType::Q4_K: return {256, 144};
    case GgmlType::Q5_K: return {256, 176};
    case GgmlType::Q6_K: return {256, 210};
    default: return {0, 0};
  }
}

namespace {

std::uint16_t rd16(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Bounds-checked little-endian reader; every failure names the file and what was being read.
class Cursor {
 public:
  Cursor(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size)
      : path_(path), data_(data), size_(size) {}
  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return size_ - pos_; }
  [[noreturn]] void fail(const std::string& what) const { throw FormatError(where(what)); }
  std::string where(const std::string& what) const {
    return "GGUF file '" + path_.string() + "': " + what + " (at byte " + std::to_string(pos_) + " of " +
           std::to_string(size_) + ")";
  }
  void need(std::size_t n, const std::string& what) const {
    if (n > remaining()) fail("truncated while reading " + what + " (needs " + std::to_string(n) + " bytes)");
  }
  template <typename T> T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(const std::string& what) {
    const auto n = read<std::uint64_t>(what + " length");
    need(n, what + " (length " + std::to_string(n) + ")");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }

 private:
  const std::filesystem::path& path_;
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

std::size_t min_value_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::Bool: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: return 8;
    case GgufValueType::String: return 8;
    case GgufValueType::Array: return 12;
  }
  return 1;
}

GgufValue read_value(Cursor& c, GgufValueType type, const std::string& key, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufValueType::U8: v.v = std::uint64_t{c.read<std::uint8_t>(key)}; break;
    case GgufValueType::I8: v.v = std::int64_t{c.read<std::int8_t>(key)}; break;
    case GgufValueType::U16: v.v = std::uint64_t{c.read<std::uint16_t>(key)}; break;
    case GgufValueType::I16: v.v = std::int64_t{c.read<std::int16_t>(key)}; break;
    case GgufValueType::U32: v.v = std::uint64_t{c.read<std::uint32_t>(key)}; break;
    case GgufValueType::I32: v.v = std::int64_t{c.read<std::int32_t>(key)}; break;
    case GgufValueType::U64: v.v = c.read<std::uint64_t>(key); break;
    case GgufValueType::I64: v.v = c.read<std::int64_t>(key); break;
    case GgufValueType::F32: v.v = double{c.read<float>(key)}; break;
    case GgufValueType::F64: v.v = c.read<double>(key); break;
    case GgufValueType::Bool: {
      const auto b = c.read<std::uint8_t>(key);
      if (b > 1) c.fail("key '" + key + "': bool value " + std::to_string(b) + " is neither 0 nor 1");
      v.v = b == 1;
      break;
    }
    case GgufValueType::String: v.v = c.string("string value of key '" + key + "'"); break;
    case GgufValueType::Array: {
      if (depth > 4) c.fail("key '" + key + "': arrays nested deeper than 4 levels");
      const auto et = c.read<std::uint32_t>(key + " array element type");
      if (et > static_cast<std::uint32_t>(GgufValueType::F64))
        c.fail("key '" + key + "': unknown array element type " + std::to_string(et));
      v.elem_type = static_cast<GgufValueType>(et);
      const auto n = c.read<std::uint64_t>(key + " array length");
      if (n > c.remaining() / min_value_size(v.elem_type))
        c.fail("key '" + key + "': array of " + std::to_string(n) + " " + gguf_value_type_name(v.elem_type) +
               " cannot fit in the rest of the file");
      std::vector<GgufValue> items;
      items.reserve(static_cast<std::size_t>(n));
      for (std::uint64_t i = 0; i < n; ++i) items.push_back(read_value(c, v.elem_type, key, depth + 1));
      v.v = std::move(items);
      break;
    }
    default: c.fail("key '" + key + "': unknown value type " + std::to_string(static_cast<std::uint32_t>(type)));
  }
  return v;
}

// Scale and min of K-quant sub-block j, packed as 6-bit values in 12 bytes (ggml get_scale_min_k4).
void get_scale_min_k4(int j, const std::uint8_t* q, std::uint8_t& d, std::uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace

Shape GgufFile::TensorInfo::row_major_shape() const { return Shape(ne.rbegin(), ne.rend()); }

GgufFile GgufFile::open(const std::filesystem::path& path) {
  GgufFile g;
  g.file_ = std::make_shared<MappedFile>(path);
  Cursor c(g.file_->path(), g.file_->data(), g.file_->size());
  const auto magic = c.read<std::uint32_t>("magic");
  if (magic != 0x46554747u) c.fail("bad magic (not a GGUF file)");
  g.version_ = c.read<std::uint32_t>("version");
  if (g.version_ != 2 && g.version_ != 3)
    c.fail("unsupported GGUF version " + std::to_string(g.version_) + " (supported: 2, 3)");
  const auto n_tensors = c.read<std::uint64_t>("tensor count");
  const auto n_kv = c.read<std::uint64_t>("metadata count");
  if (n_kv > c.remaining() / 12) c.fail("metadata count " + std::to_string(n_kv) + " cannot fit in the file");
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.string("metadata key " + std::to_string(i));
    const auto t = c.read<std::uint32_t>("type of key '" + key + "'");
    if (t > static_cast<std::uint32_t>(GgufValueType::F64))
      c.fail("key '" + key + "': unknown value type " + std::to_string(t));
    GgufValue v = read_value(c, static_cast<GgufValueType>(t), key, 0);
    if (g.kv_index_.count(key)) c.fail("duplicate metadata key '" + key + "'");
    g.kv_index_[key] = g.kv_.size();
    g.kv_.emplace_back(std::move(key), std::move(v));
  }
  if (g.has("general.alignment")) {
    g.alignment_ = g.get_uint("general.alignment");
    if (g.alignment_ == 0 || (g.alignment_ & (g.alignment_ - 1)) != 0 || g.alignment_ > 65536)
      c.fail("general.alignment " + std::to_string(g.alignment_) + " is not a power of two <= 65536");
  }
  if (n_tensors > c.remaining() / 24) c.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the file");
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.name = c.string("tensor name " + std::to_string(i));
    const auto nd = c.read<std::uint32_t>("n_dims of tensor '" + t.name + "'");
    if (nd == 0 || nd > 4) c.fail("tensor '" + t.name + "' has " + std::to_string(nd) + " dimensions (1..4 allowed)");
    std::uint64_t numel = 1;
    for (std::uint32_t d = 0; d < nd; ++d) {
      const auto e = c.read<std::uint64_t>("dims of tensor '" + t.name + "'");
      if (e == 0 || e > (std::uint64_t{1} << 40) || numel > (std::uint64_t{1} << 48) / e)
        c.fail("tensor '" + t.name + "' has an invalid dimension " + std::to_string(e));
      numel *= e;
      t.ne.push_back(static_cast<std::int64_t>(e));
    }
    const auto type = c.read<std::uint32_t>("type of tensor '" + t.name + "'");
    t.type = static_cast<GgmlType>(type);
    const auto [blk, bytes] = ggml_block_layout(t.type);
    if (blk == 0)
      c.fail("tensor '" + t.name + "' has ggml type " + std::to_string(type) + " (" + ggml_type_name(t.type) +
             "), which this reader does not support");
    if (t.ne[0] % blk != 0)
      c.fail("tensor '" + t.name + "': row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
             ggml_type_name(t.type) + " block size " + std::to_string(blk));
    t.nbytes = checked_mul(checked_narrow<std::size_t>(numel / static_cast<std::uint64_t>(blk), [&] { return c.where("tensor '" + t.name + "' block count"); }),
                           static_cast<std::size_t>(bytes), [&] { return c.where("tensor '" + t.name + "' byte size"); });
    t.offset = c.read<std::uint64_t>("offset of tensor '" + t.name + "'");
    if (t.offset % g.alignment_ != 0)
      c.fail("tensor '" + t.name + "' offset " + std::to_string(t.offset) + " is not aligned to " +
             std::to_string(g.alignment_));
    if (g.tensor_index_.count(t.name)) c.fail("duplicate tensor name '" + t.name + "'");
    g.tensor_index_[t.name] = g.tensors_.size();
    g.tensors_.push_back(std::move(t));
  }
  const std::size_t data_start = (c.pos() + g.alignment_ - 1) / g.alignment_ * g.alignment_;
  if (data_start > g.file_->size() && !g.tensors_.empty()) c.fail("data section starts past the end of the file");
  const std::size_t data_size = g.file_->size() - std::min(data_start, g.file_->size());
  for (auto& t : g.tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      c.fail("tensor '" + t.name + "' [" + std::to_string(t.offset) + ", +" + std::to_string(t.nbytes) +
             ") lies outside the " + std::to_string(data_size) + "-byte data section");
    t.data = g.file_->data() + data_start + t.offset;
  }
  return g;
}

bool GgufFile::has(std::string_view key) const { return kv_index_.find(key) != kv_index_.end(); }

const GgufValue& GgufFile::value(std::string_view key) const {
  auto it = kv_index_.find(key);
  if (it == kv_index_.end())
    throw FormatError("GGUF file '" + path().string() + "' has no metadata key '" + std::string(key) + "'");
  return kv_[it->second].second;
}

void GgufFile::type_error(std::string_view key, const char* want) const {
  const auto& v = value(key);
  throw FormatError("GGUF file '" + path().string() + "': key '" + std::string(key) + "' is " +
                    gguf_value_type_name(v.type) + (v.type == GgufValueType::Array
                                                        ? std::string(" of ") + gguf_value_type_name(v.elem_type)
                                                        : std::string()) +
                    ", expected " + want);
}

std::string GgufFile::get_string(std::string_view key) const {
  const auto& v = value(key);
  if (const auto* s = std::get_if<std::string>(&v.v)) return *s;
  type_error(key, "string");
}

std::uint64_t GgufFile::get_uint(std::string_view key) const {
  const auto& v = value(key);
  if (const auto* u = std::get_if<std::uint64_t>(&v.v)) return *u;
  if (const auto* i = std::get_if<std::int64_t>(&v.v); i && *i >= 0) return static_cast<std::uint64_t>(*i);
  type_error(key, "a non-negative integer");
}

std::int64_t GgufFile::get_int(std::string_view key) const {
  const auto& v = value(key);
  if (const auto* i = std::get_if<std::int64_t>(&v.v)) return *i;
  if (const auto* u = std::get_if<std::uint64_t>(&v.v);
      u && *u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return static_cast<std::int64_t>(*u);
  type_error(key, "an integer");
}

double GgufFile::get_float(std::string_view key) const {
  const auto& v = value(key);
  if (const auto* d = std::get_if<double>(&v.v)) return *d;
  if (const auto* u = std::get_if<std::uint64_t>(&v.v)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<std::int64_t>(&v.v)) return static_cast<double>(*i);
  type_error(key, "a number");
}

bool GgufFile::get_bool(std::string_view key) const {
  const auto& v = value(key);
  if (const auto* b = std::get_if<bool>(&v.v)) return *b;
  type_error(key, "bool");
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const auto& v = value(key);
  const auto* a = std::get_if<std::vector<GgufValue>>(&v.v);
  if (!a || v.elem_type != GgufValueType::String) type_error(key, "array of string");
  std::vector<std::string> out;
  out.reserve(a->size());
  for (auto& e : *a) out.push_back(std::get<std::string>(e.v));
  return out;
}

std::vector<float> GgufFile::get_float_array(std::string_view key) const {
  const auto& v = value(key);
  const auto* a = std::get_if<std::vector<GgufValue>>(&v.v);
  if (!a || (v.elem_type != GgufValueType::F32 && v.elem_type != GgufValueType::F64))
    type_error(key, "array of float32/float64");
  std::vector<float> out;
  out.reserve(a->size());
  for (auto& e : *a) out.push_back(static_cast<float>(std::get<double>(e.v)));
  return out;
}

std::vector<std::int64_t> GgufFile::get_int_array(std::string_view key) const {
  const auto& v = value(key);
  const auto* a = std::get_if<std::vector<GgufValue>>(&v.v);
  if (!a) type_error(key, "array of integers");
  std::vector<std::int64_t> out;
  out.reserve(a->size());
  for (auto& e : *a) {
    if (const auto* i = std::get_if<std::int64_t>(&e.v)) out.push_back(*i);
    else if (const auto* u = std::get_if<std::uint64_t>(&e.v)) out.push_back(static_cast<std::int64_t>(*u));
    else type_error(key, "array of integers");
  }
  return out;
}

const GgufFile::TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

void GgufFile::release_pages(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) throw FormatError("GGUF file '" + path().string() + "' has no tensor '" + std::string(name) + "'");
  file_->release_pages({t->data, t->nbytes});
}

Tensor GgufFile::load_f32(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) throw FormatError("GGUF file '" + path().string() + "' has no tensor '" + std::string(name) + "'");
  Tensor out = Tensor::zeros(t->row_major_shape(), DType::F32);
  ggml_dequantize(t->type, t->data, out.data<float>(), out.numel());
  return out;
}

Tensor GgufFile::rows_f32(std::string_view name, std::int64_t first, std::int64_t count) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) throw FormatError("GGUF file '" + path().string() + "' has no tensor '" + std::string(name) + "'");
  Shape shape = t->row_major_shape();
  if (shape.empty() || first < 0 || count < 0 || first > shape[0] - count)
    throw ShapeError("GGUF tensor '" + std::string(name) + "' " + shape_str(shape) + ": rows [" +
                     std::to_string(first) + ", " + std::to_string(first + count) + ") out of range");
  const std::int64_t rows = shape[0], row_elems = rows ? shape_numel(shape) / rows : 0;
  const auto [blk, block_bytes] = ggml_block_layout(t->type);
  if (blk == 0 || (first * row_elems) % blk != 0 || (count * row_elems) % blk != 0)
    throw FormatError("GGUF tensor '" + std::string(name) + "' (" + ggml_type_name(t->type) + "): rows [" +
                      std::to_string(first) + ", " + std::to_string(first + count) +
                      ") do not start and end on whole quantization blocks");
  shape[0] = count;
  Tensor out = Tensor::zeros(shape, DType::F32);
  const std::uint8_t* src = t->data + static_cast<std::size_t>(first * row_elems / blk * block_bytes);
  ggml_dequantize(t->type, src, out.data<float>(), out.numel());
  file_->release_pages({src, static_cast<std::size_t>(count * row_elems / blk * block_bytes)});
  return out;
}

void ggml_dequantize(GgmlType t, const std::uint8_t* src, float* dst, std::int64_t n) {
  const auto [blk, bytes] = ggml_block_layout(t);
  if (blk == 0 || n % blk != 0)
    throw FormatError(std::string("ggml_dequantize: type ") + ggml_type_name(t) + " with " + std::to_string(n) +
                      " elements is not supported");
  const std::int64_t nb = n / blk;
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<std::size_t>(n) * 4); return;
    case GgmlType::F16:
      for (std::int64_t i = 0; i < n; ++i) dst[i] = half_to_float(rd16(src + 2 * i));
      return;
    case GgmlType::BF16:
      for (std::int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(rd16(src + 2 * i));
      return;
    case GgmlType::Q8_0:  // {f16 d; int8 qs[32]}: x = d * q
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::uint8_t* p = src + b * 34;
        const float d = half_to_float(rd16(p));
        for (int j = 0; j < 32; ++j) dst[b * 32 + j] = d * static_cast<float>(static_cast<std::int8_t>(p[2 + j]));
      }
      return;
    case GgmlType::Q4_0:  // {f16 d; u8 qs[16]}: low nibbles are elements 0..15, high nibbles 16..31; x = d * (q - 8)
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::uint8_t* p = src + b * 18;
        const float d = half_to_float(rd16(p));
        for (int j = 0; j < 16; ++j) {
          dst[b * 32 + j] = d * static_cast<float>((p[2 + j] & 0x0f) - 8);
          dst[b * 32 + j + 16] = d * static_cast<float>((p[2 + j] >> 4) - 8);
        }
      }
      return;
    case GgmlType::Q4_1:  // {f16 d, m; u8 qs[16]}: x = d * q + m
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::uint8_t* p = src + b * 20;
        const float d = half_to_float(rd16(p)), m = half_to_float(rd16(p + 2));
        for (int j = 0; j < 16; ++j) {
          dst[b * 32 + j] = d * static_cast<float>(p[4 + j] & 0x0f) + m;
          dst[b * 32 + j + 16] = d * static_cast<float>(p[4 + j] >> 4) + m;
        }
      }
      return;
    case GgmlType::Q5_0:  // {f16 d; u32 qh; u8 qs[16]}: fifth bit of element j in qh bit j; x = d * (q - 16)
    case GgmlType::Q5_1: {  // {f16 d, m; u32 qh; u8 qs[16]}: x = d * q + m
      const bool has_min = t == GgmlType::Q5_1;
      const std::int64_t stride = has_min ? 24 : 22;
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::uint8_t* p = src + b * stride;
        const float d = half_to_float(rd16(p)), m = has_min ? half_to_float(rd16(p + 2)) : 0.0f;
        std::uint32_t qh;
        std::memcpy(&qh, p + (has_min ? 4 : 2), 4);
        const std::uint8_t* qs = p + (has_min ? 8 : 6);
        for (int j = 0; j < 16; ++j) {
          const int x0 = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
          const int x1 = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
          dst[b * 32 + j] = has_min ? d * static_cast<float>(x0) + m : d * static_cast<float>(x0 - 16);
          dst[b * 32 + j + 16] = has_min ? d * static_cast<float>(x1) + m : d * static_cast<float>(x1 - 16);
        }
      }
      return;
    }
    case GgmlType::Q4_K:  // {f16 d, dmin; u8 scales[12]; u8 qs[128]}: 8 sub-blocks of 32 with 6-bit scale/min
    case GgmlType::Q5_K: {  // {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: fifth bit from qh
      const bool five = t == GgmlType::Q5_K;
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::uint8_t* p = src + b * bytes;
        const float d = half_to_float(rd16(p)), dmin = half_to_float(rd16(p + 2));
        const std::uint8_t* scales = p + 4;
        const std::uint8_t* qh = p + 16;
        const std::uint8_t* q = p + (five ? 48 : 16);
        float* y = dst + b * 256;
        std::uint8_t u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
          std::uint8_t sc, m;
          get_scale_min_k4(is, scales, sc, m);
          const float d1 = d * sc, m1 = dmin * m;
          get_scale_min_k4(is + 1, scales, sc, m);
          const float d2 = d * sc, m2 = dmin * m;
          for (int l = 0; l < 32; ++l)
            *y++ = d1 * static_cast<float>((q[l] & 0xF) + (five && (qh[l] & u1) ? 16 : 0)) - m1;
          for (int l = 0; l < 32; ++l)
            *y++ = d2 * static_cast<float>((q[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - m2;
          u1 = static_cast<std::uint8_t>(u1 << 2);
          u2 = static_cast<std::uint8_t>(u2 << 2);
        }
      }
      return;
    }
    case GgmlType::Q6_K:  // {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::uint8_t* ql = src + b * 210;
        const std::uint8_t* qh = ql + 128;
        const auto* sc = reinterpret_cast<const std::int8_t*>(ql + 192);
        const float d = half_to_float(rd16(ql + 208));
        float* y = dst + b * 256;
        for (int n0 = 0; n0 < 256; n0 += 128, y += 128, ql += 64, qh += 32, sc += 8)
          for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * static_cast<float>(q1);
            y[l + 32] = d * sc[is + 2] * static_cast<float>(q2);
            y[l + 64] = d * sc[is + 4] * static_cast<float>(q3);
            y[l + 96] = d * sc[is + 6] * static_cast<float>(q4);
          }
      }
      return;
    default:
      throw FormatError(std::string("ggml_dequantize: type ") + ggml_type_name(t) + " is not supported");
  }
}

}  // namespace pocketlora
