#include "host/formats/bnb4bit_linear.h"

#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "host/core/checked_size.h"
#include "host/core/error.h"
#include "host/util/json_field.h"
#include "host/util/python_float_repr.h"
#include "shaders/common/nf4_codebook.h"

namespace pocketlora {

namespace {

template <typename T>
std::vector<T> copy_as(const SafetensorsFile::Info& i, const char* want, const std::string& who) {
  if (i.dtype != want) throw FormatError(who + ": tensor '" + i.name + "' is " + i.dtype + ", expected " + want);
  std::vector<T> v(i.nbytes / sizeof(T));
  std::memcpy(v.data(), i.data, v.size() * sizeof(T));
  return v;
}

template <typename T> std::vector<std::uint8_t> bytes_of(const T* p, std::size_t n) {
  const auto* b = reinterpret_cast<const std::uint8_t*>(p);
  return {b, b + n * sizeof(T)};
}

}  // namespace

const char* bnb4bit_torch_dtype(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    default: break;
  }
  throw InvalidArgument(std::string("bnb-4bit: cannot quantize a ") + dtype_name(t) +
                        " tensor (float32, float16 or bfloat16 expected)");
}

std::optional<DType> dtype_from_torch_name(std::string_view name) {
  if (name == "float32") return DType::F32;
  if (name == "float16") return DType::F16;
  if (name == "bfloat16") return DType::BF16;
  return std::nullopt;
}

std::string bnb4bit_quant_state_json(const Nf4Quantized& q, std::string_view torch_dtype) {
  // Python's json.dumps with default separators (", " and ": "), keys in QuantState.as_dict order.
  std::string shape;
  for (std::size_t i = 0; i < q.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(q.shape[i]);
  std::string js = "{\"quant_type\": \"nf4\", \"blocksize\": " + std::to_string(kNf4BlockSize) + ", \"dtype\": \"" +
                   std::string(torch_dtype) + "\", \"shape\": [" + shape + "]";
  if (q.double_quant)
    js += ", \"nested_blocksize\": " + std::to_string(kNf4NestedBlockSize) +
          ", \"nested_dtype\": \"float32\", \"nested_offset\": " + python_float_repr(static_cast<double>(q.dq.offset));
  return js + "}";
}

std::vector<Bnb4bitStateTensor> bnb4bit_linear_state_dict(const std::string& weight_name, const Nf4Quantized& q,
                                                          std::string_view torch_dtype) {
  std::vector<Bnb4bitStateTensor> sd;
  sd.push_back({weight_name, "U8", {static_cast<std::int64_t>(q.codes.size()), 1}, q.codes});
  if (q.double_quant)
    sd.push_back({weight_name + ".absmax", "U8", {static_cast<std::int64_t>(q.dq.absmax_q.size())}, q.dq.absmax_q});
  else
    sd.push_back({weight_name + ".absmax", "F32", {static_cast<std::int64_t>(q.absmax.size())},
                  bytes_of(q.absmax.data(), q.absmax.size())});
  sd.push_back({weight_name + ".quant_map", "F32", {16}, bytes_of(kNf4Codebook, 16)});
  if (q.double_quant) {
    sd.push_back({weight_name + ".nested_absmax", "F32", {static_cast<std::int64_t>(q.dq.nested_absmax.size())},
                  bytes_of(q.dq.nested_absmax.data(), q.dq.nested_absmax.size())});
    sd.push_back({weight_name + ".nested_quant_map", "F32", {256}, bytes_of(q.dq.code_map.data(), q.dq.code_map.size())});
  }
  const std::string js = bnb4bit_quant_state_json(q, torch_dtype);
  sd.push_back({weight_name + std::string(kBnb4bitStateSuffix), "U8", {static_cast<std::int64_t>(js.size())},
                bytes_of(js.data(), js.size())});
  return sd;
}

Bnb4bitLinear read_bnb4bit_linear(const SafetensorsCheckpoint& ck, const std::string& w, const std::string& origin) {
  const std::string who = origin + ", weight '" + w + "'";
  const std::string state_name = w + std::string(kBnb4bitStateSuffix);
  const auto& state = ck.at(state_name);
  nlohmann::json st;
  try {
    st = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(state.data), state.nbytes));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(who + ": quant_state is not valid JSON: " + e.what());
  }
  if (!st.is_object()) throw FormatError(who + ": quant_state is " + st.type_name() + ", expected a JSON object");
  const std::string qs = who + ", quant_state";
  const std::string quant_type = json_field::string(st, "quant_type", qs);
  if (quant_type != "nf4") throw FormatError(who + ": quant_type '" + quant_type + "' is not supported (only nf4)");
  const std::int64_t blocksize = json_field::integer(st, "blocksize", qs);
  if (blocksize != kNf4BlockSize)
    throw FormatError(who + ": blocksize " + std::to_string(blocksize) + " is not supported (only 64)");
  if (!st.contains("shape") || !st["shape"].is_array() || st["shape"].size() != 2)
    throw FormatError(who + ": quant_state shape must be [out, in]");
  Bnb4bitLinear out;
  const std::string dtype = json_field::string(st, "dtype", qs);
  const auto parsed = dtype_from_torch_name(dtype);
  if (!parsed) throw FormatError(who + ": quant_state dtype '" + dtype + "', expected float32, float16 or bfloat16");
  out.dtype = *parsed;
  Nf4Quantized& q = out.q;
  q.shape = {json_field::int_at(st["shape"], 0, "shape", qs), json_field::int_at(st["shape"], 1, "shape", qs)};
  // The shape is checked against the stored code bytes before anything is sized from it.
  const std::int64_t n = checked_numel(q.shape, qs + " shape " + shape_str(q.shape));
  const std::int64_t blocks = (n + kNf4BlockSize - 1) / kNf4BlockSize;
  q.codes = copy_as<std::uint8_t>(ck.at(w), "U8", who);
  if (static_cast<std::int64_t>(q.codes.size()) != (n + 1) / 2)
    throw FormatError(who + ": " + std::to_string(q.codes.size()) + " code bytes for shape " + shape_str(q.shape) +
                      ", expected " + std::to_string((n + 1) / 2));
  const auto qmap = copy_as<float>(ck.at(w + ".quant_map"), "F32", who);
  for (int i = 0; i < 16; ++i)
    if (qmap.size() != 16 || qmap[static_cast<std::size_t>(i)] != kNf4Codebook[i])
      throw FormatError(who + ": quant_map is not the NF4 codebook");
  q.double_quant = st.contains("nested_offset");
  out.tensor_names = {w, w + ".absmax", w + ".quant_map", state_name};
  if (q.double_quant) {
    const std::int64_t nested_blocksize = json_field::integer(st, "nested_blocksize", qs);
    if (nested_blocksize != kNf4NestedBlockSize)
      throw FormatError(who + ": nested_blocksize " + std::to_string(nested_blocksize) + ", expected 256");
    q.dq.absmax_q = copy_as<std::uint8_t>(ck.at(w + ".absmax"), "U8", who);
    q.dq.nested_absmax = copy_as<float>(ck.at(w + ".nested_absmax"), "F32", who);
    q.dq.offset = static_cast<float>(json_field::number(st, "nested_offset", qs));
    // Decoded with the map the file stores, as dequantize_4bit does (checkpoints saved by a torch build without
    // fused multiply-adds carry a map that differs from the released table in a few ulps).
    q.dq.code_map = copy_as<float>(ck.at(w + ".nested_quant_map"), "F32", who);
    if (q.dq.code_map.size() != 256)
      throw FormatError(who + ": nested_quant_map has " + std::to_string(q.dq.code_map.size()) +
                        " entries, expected 256");
    for (std::size_t i = 0; i < 256; ++i)
      if (!std::isfinite(q.dq.code_map[i]))
        throw FormatError(who + ": nested_quant_map entry " + std::to_string(i) + " is not finite");
    if (static_cast<std::int64_t>(q.dq.absmax_q.size()) != blocks)
      throw FormatError(who + ": absmax has " + std::to_string(q.dq.absmax_q.size()) + " entries, expected " +
                        std::to_string(blocks));
    const std::int64_t nested_blocks = (blocks + kNf4NestedBlockSize - 1) / kNf4NestedBlockSize;
    if (static_cast<std::int64_t>(q.dq.nested_absmax.size()) != nested_blocks)
      throw FormatError(who + ": nested_absmax has " + std::to_string(q.dq.nested_absmax.size()) +
                        " entries, expected " + std::to_string(nested_blocks));
    q.absmax = dequantize_absmax(q.dq, static_cast<std::size_t>(blocks));
    out.tensor_names.push_back(w + ".nested_absmax");
    out.tensor_names.push_back(w + ".nested_quant_map");
  } else {
    q.absmax = copy_as<float>(ck.at(w + ".absmax"), "F32", who);
    if (static_cast<std::int64_t>(q.absmax.size()) != blocks)
      throw FormatError(who + ": absmax has " + std::to_string(q.absmax.size()) + " entries, expected " +
                        std::to_string(blocks));
  }
  return out;
}

}  // namespace pocketlora
