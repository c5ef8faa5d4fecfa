#include "host/formats/gguf_writer.h"

#include <cstring>

#include "host/core/error.h"
#include "host/util/atomic_file.h"

namespace pocketlora {

namespace {

void put_bytes(std::vector<std::uint8_t>& out, const void* p, std::size_t n) {
  if (n == 0) return;
  const std::size_t at = out.size();
  out.resize(at + n);  // resize + memcpy: GCC 12 misreports vector::insert of small spans as an overflow
  std::memcpy(out.data() + at, p, n);
}
template <typename T> void put(std::vector<std::uint8_t>& out, T v) { put_bytes(out, &v, sizeof v); }
void put_string(std::vector<std::uint8_t>& out, const std::string& s) {
  put<std::uint64_t>(out, s.size());
  put_bytes(out, s.data(), s.size());
}

void put_value(std::vector<std::uint8_t>& out, const GgufValue& v, const std::string& key) {
  auto as_u = [&] { return std::get<std::uint64_t>(v.v); };
  auto as_i = [&] { return std::get<std::int64_t>(v.v); };
  switch (v.type) {
    case GgufValueType::U8: put<std::uint8_t>(out, static_cast<std::uint8_t>(as_u())); break;
    case GgufValueType::I8: put<std::int8_t>(out, static_cast<std::int8_t>(as_i())); break;
    case GgufValueType::U16: put<std::uint16_t>(out, static_cast<std::uint16_t>(as_u())); break;
    case GgufValueType::I16: put<std::int16_t>(out, static_cast<std::int16_t>(as_i())); break;
    case GgufValueType::U32: put<std::uint32_t>(out, static_cast<std::uint32_t>(as_u())); break;
    case GgufValueType::I32: put<std::int32_t>(out, static_cast<std::int32_t>(as_i())); break;
    case GgufValueType::U64: put<std::uint64_t>(out, as_u()); break;
    case GgufValueType::I64: put<std::int64_t>(out, as_i()); break;
    case GgufValueType::F32: put<float>(out, static_cast<float>(std::get<double>(v.v))); break;
    case GgufValueType::F64: put<double>(out, std::get<double>(v.v)); break;
    case GgufValueType::Bool: put<std::uint8_t>(out, std::get<bool>(v.v) ? 1 : 0); break;
    case GgufValueType::String: put_string(out, std::get<std::string>(v.v)); break;
    case GgufValueType::Array: {
      const auto& items = std::get<std::vector<GgufValue>>(v.v);
      put<std::uint32_t>(out, static_cast<std::uint32_t>(v.elem_type));
      put<std::uint64_t>(out, items.size());
      for (auto& e : items) {
        if (e.type != v.elem_type) throw InvalidArgument("GGUF key '" + key + "': array elements of mixed types");
        put_value(out, e, key);
      }
      break;
    }
  }
}

template <typename T> GgufValue array_of(const std::vector<T>& v, GgufValueType et) {
  GgufValue a;
  a.type = GgufValueType::Array;
  a.elem_type = et;
  std::vector<GgufValue> items;
  for (auto& x : v) {
    GgufValue e;
    e.type = et;
    if constexpr (std::is_same_v<T, std::string>) e.v = x;
    else if constexpr (std::is_same_v<T, float>) e.v = static_cast<double>(x);
    else e.v = static_cast<std::int64_t>(x);
    items.push_back(std::move(e));
  }
  a.v = std::move(items);
  return a;
}

// Emplaces the alternative directly: passing the whole variant by value trips GCC 12's maybe-uninitialized
// analysis in ASan builds.
template <typename T> GgufValue scalar(GgufValueType t, T v) {
  GgufValue g;
  g.type = t;
  g.v.emplace<T>(std::move(v));
  return g;
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& [k, v] : kv_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  kv_.emplace_back(key, std::move(value));
}
void GgufWriter::set_string(const std::string& k, const std::string& v) { set(k, scalar<std::string>(GgufValueType::String, v)); }
void GgufWriter::set_u32(const std::string& k, std::uint32_t v) { set(k, scalar<std::uint64_t>(GgufValueType::U32, v)); }
void GgufWriter::set_i32(const std::string& k, std::int32_t v) { set(k, scalar<std::int64_t>(GgufValueType::I32, v)); }
void GgufWriter::set_u64(const std::string& k, std::uint64_t v) { set(k, scalar<std::uint64_t>(GgufValueType::U64, v)); }
void GgufWriter::set_f32(const std::string& k, float v) { set(k, scalar<double>(GgufValueType::F32, v)); }
void GgufWriter::set_bool(const std::string& k, bool v) { set(k, scalar<bool>(GgufValueType::Bool, v)); }
void GgufWriter::set_string_array(const std::string& k, const std::vector<std::string>& v) {
  set(k, array_of(v, GgufValueType::String));
}
void GgufWriter::set_f32_array(const std::string& k, const std::vector<float>& v) { set(k, array_of(v, GgufValueType::F32)); }
void GgufWriter::set_i32_array(const std::string& k, const std::vector<std::int32_t>& v) {
  set(k, array_of(v, GgufValueType::I32));
}

void GgufWriter::add_tensor(const std::string& name, const Tensor& t) {
  if (t.dtype() != DType::F32 && t.dtype() != DType::F16)
    throw InvalidArgument("GgufWriter: tensor '" + name + "' is " + dtype_name(t.dtype()) + "; write F32 or F16");
  Tensor c = t.is_contiguous() ? t : t.clone();
  std::vector<std::uint8_t> bytes(c.nbytes());
  if (!bytes.empty()) std::memcpy(bytes.data(), c.raw(), bytes.size());
  add_raw_tensor(name, t.dtype() == DType::F32 ? GgmlType::F32 : GgmlType::F16,
                 std::vector<std::int64_t>(c.shape().rbegin(), c.shape().rend()), std::move(bytes));
}

void GgufWriter::add_raw_tensor(const std::string& name, GgmlType type, std::vector<std::int64_t> ne,
                                std::vector<std::uint8_t> bytes) {
  const auto [blk, bsize] = ggml_block_layout(type);
  if (blk == 0) throw InvalidArgument("GgufWriter: tensor '" + name + "' has unsupported ggml type");
  if (ne.empty() || ne.size() > 4 || ne[0] % blk != 0)
    throw ShapeError("GgufWriter: tensor '" + name + "' ne " + shape_str(ne) + " does not fit " + ggml_type_name(type));
  const std::int64_t n = shape_numel(ne);
  if (static_cast<std::uint64_t>(n / blk * bsize) != bytes.size())
    throw ShapeError("GgufWriter: tensor '" + name + "' needs " + std::to_string(n / blk * bsize) + " bytes of " +
                     ggml_type_name(type) + ", got " + std::to_string(bytes.size()));
  for (auto& t : tensors_)
    if (t.name == name) throw InvalidArgument("GgufWriter: duplicate tensor '" + name + "'");
  tensors_.push_back({name, type, std::move(ne), std::move(bytes)});
}

void GgufWriter::write(const std::filesystem::path& path) const {
  std::uint64_t alignment = 32;
  for (auto& [k, v] : kv_)
    if (k == "general.alignment") alignment = std::get<std::uint64_t>(v.v);
  std::vector<std::uint8_t> head;
  put<std::uint32_t>(head, 0x46554747u);
  put<std::uint32_t>(head, 3);
  put<std::uint64_t>(head, tensors_.size());
  put<std::uint64_t>(head, kv_.size());
  for (auto& [k, v] : kv_) {
    put_string(head, k);
    put<std::uint32_t>(head, static_cast<std::uint32_t>(v.type));
    put_value(head, v, k);
  }
  std::uint64_t offset = 0;
  for (auto& t : tensors_) {
    put_string(head, t.name);
    put<std::uint32_t>(head, static_cast<std::uint32_t>(t.ne.size()));
    for (auto e : t.ne) put<std::uint64_t>(head, static_cast<std::uint64_t>(e));
    put<std::uint32_t>(head, static_cast<std::uint32_t>(t.type));
    put<std::uint64_t>(head, offset);
    offset += (t.bytes.size() + alignment - 1) / alignment * alignment;
  }
  head.resize((head.size() + alignment - 1) / alignment * alignment, 0);
  AtomicFileWriter w(path);
  w.write(head.data(), head.size());
  const std::vector<std::uint8_t> zeros(alignment, 0);
  for (auto& t : tensors_) {
    w.write(t.bytes.data(), t.bytes.size());
    const std::size_t pad = (alignment - t.bytes.size() % alignment) % alignment;
    w.write(zeros.data(), pad);
  }
  w.commit();
}

}  // namespace pocketlora
