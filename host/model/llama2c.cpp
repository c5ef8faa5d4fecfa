#include "host/model/llama2c.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>

#include "host/core/checked_size.h"
#include "host/core/error.h"
#include "host/util/mapped_file.h"

namespace pocketlora {

namespace {

constexpr std::uint32_t kMagic = 0x616b3432;  // "ak42" little-endian

// Walks the fixed weight order, checking each tensor fits the file, and hands out deferred reads of it.
struct Llama2cReader {
  std::shared_ptr<const MappedFile> file;
  std::size_t pos;
  std::string origin;
  DeferredTensor take(const std::string& name, Shape shape) {
    const std::size_t bytes = checked_nbytes(checked_numel(shape, [&] { return origin + ": tensor '" + name + "' " + shape_str(shape); }), 4,
                                             [&] { return origin + ": tensor '" + name + "' " + shape_str(shape); });
    if (bytes > file->size() - std::min(pos, file->size()))
      throw FormatError(origin + ": truncated while reading tensor '" + name + "' " + shape_str(shape) + " (needs " +
                        std::to_string(bytes) + " bytes at offset " + std::to_string(pos) + ", file has " +
                        std::to_string(file->size()) + ")");
    const std::size_t at = pos;
    pos += bytes;
    const std::size_t row_bytes = shape[0] ? bytes / static_cast<std::size_t>(shape[0]) : 0;
    return {shape, [f = file, at, row_bytes, shape](std::int64_t first, std::int64_t count) {
              const Tensor whole = Tensor::view(const_cast<std::uint8_t*>(f->data() + at), shape, DType::F32);
              Tensor t = whole.slice_rows(first, first + count).to(DType::F32);
              f->release_pages({f->data() + at + static_cast<std::size_t>(first) * row_bytes, t.nbytes()});
              return t;
            }};
  }
  // export.py version 2: int8 values, then one fp32 scale per group of `group` values (w = q * scale).
  DeferredTensor take_q8(const std::string& name, Shape shape, std::int64_t group) {
    const auto what = [&] { return origin + ": int8 tensor '" + name + "' " + shape_str(shape); };
    const std::int64_t n = checked_numel(shape, what);
    if (n % group != 0)
      throw FormatError(origin + ": tensor '" + name + "' " + shape_str(shape) + " is not a whole number of " +
                        std::to_string(group) + "-element groups");
    const std::size_t need = checked_add(checked_nbytes(n, 1, what), checked_nbytes(n / group, 4, what), what);
    if (need > file->size() - std::min(pos, file->size()))
      throw FormatError(origin + ": truncated while reading int8 tensor '" + name + "' " + shape_str(shape) +
                        " (needs " + std::to_string(need) + " bytes at offset " + std::to_string(pos) + ")");
    const std::size_t at = pos;
    pos += need;
    return {shape, [f = file, at, n, group, shape](std::int64_t first, std::int64_t count) {
              Shape rows_shape = shape;
              rows_shape[0] = count;
              Tensor t = Tensor::zeros(rows_shape);
              if (first < 0 || count < 0 || first > shape[0] - count)
                throw ShapeError("int8 tensor " + shape_str(shape) + ": rows [" + std::to_string(first) + ", " +
                                 std::to_string(first + count) + ") out of range");
              const std::int64_t row = shape[0] ? n / shape[0] : 0, begin = first * row, end = begin + t.numel();
              const auto* q = reinterpret_cast<const std::int8_t*>(f->data() + at);
              const std::uint8_t* sc = f->data() + at + static_cast<std::size_t>(n);
              for (std::int64_t i = begin; i < end; ++i) {
                float s;
                std::memcpy(&s, sc + static_cast<std::size_t>(i / group) * 4, 4);
                t.data<float>()[i - begin] = static_cast<float>(q[i]) * s;
              }
              const std::int64_t g0 = begin / group, g1 = end ? (end - 1) / group + 1 : 0;
              f->release_pages({f->data() + at + static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin)});
              f->release_pages({sc + static_cast<std::size_t>(g0) * 4, static_cast<std::size_t>(g1 - g0) * 4});
              return t;
            }};
  }
};

}  // namespace

bool looks_like_llama2c_v1(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::uint32_t magic = 0;
  in.read(reinterpret_cast<char*>(&magic), 4);
  return in && magic == kMagic;
}

LlamaWeights load_llama2c(const std::filesystem::path& path) {
  const LlamaWeightSource src = open_llama2c(path);
  LlamaWeights w;
  w.config = src.config;
  w.source = src.source;
  for (const auto& [name, t] : src.tensors) w.tensors[name] = t.read();
  if (src.tied_output) w.tensors["output"] = w.tensors.at("tok_embeddings");
  return w;
}

LlamaWeightSource open_llama2c(const std::filesystem::path& path) {
  const auto file = std::make_shared<const MappedFile>(path);
  const MappedFile& f = *file;
  const std::string origin = "llama2.c checkpoint '" + path.string() + "'";
  LlamaWeightSource w;
  w.source = ModelSource::Llama2c;
  LlamaConfig& c = w.config;
  c.source = "llama2c";
  std::size_t data_start = 28;
  bool shared = true;
  std::int32_t group_size = 0;  // > 0: version 2, int8 weights in groups with one fp32 scale each
  std::int32_t h[7];
  if (f.size() >= 8 && looks_like_llama2c_v1(path)) {
    std::int32_t version;
    std::memcpy(&version, f.data() + 4, 4);
    if (version != 1 && version != 2)
      throw FormatError(origin + ": export version " + std::to_string(version) +
                        " is not supported (1 = fp32, 2 = int8 groups)");
    if (f.size() < 256) throw FormatError(origin + ": shorter than its 256-byte header");
    std::memcpy(h, f.data() + 8, 28);
    shared = f.data()[36] != 0;
    if (version == 2) {
      std::memcpy(&group_size, f.data() + 37, 4);
      if (group_size <= 0 || group_size > (1 << 20))
        throw FormatError(origin + ": group size " + std::to_string(group_size) + " is not positive");
    }
    data_start = 256;
  } else {
    if (f.size() < 28) throw FormatError(origin + ": shorter than the 28-byte header");
    std::memcpy(h, f.data(), 28);
    shared = h[5] > 0;
  }
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  // v0 marks an untied output by a negative vocab size; widened first so -INT32_MIN cannot overflow.
  c.vocab_size = data_start == 256 ? std::int64_t{h[5]} : std::abs(std::int64_t{h[5]});
  c.max_seq_len = h[6];
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  c.tied_embeddings = shared;
  c.rms_eps = 1e-5;  // run.c hard-codes 1e-5
  c.rope_theta = 10000.0;
  c.bos_id = 1;
  c.eos_id = 2;
  if (c.dim <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.dim % c.n_heads != 0 || c.n_layers <= 0 ||
      c.n_layers > 4096 || c.dim > (1 << 20) || c.hidden_dim <= 0 || c.hidden_dim > (1 << 22) || c.vocab_size <= 0 ||
      c.vocab_size > (1 << 24) || c.max_seq_len <= 0 || c.max_seq_len > (1 << 24))
    throw FormatError(origin + ": not a llama2.c checkpoint, or a corrupt header (" + c.summary() + ")");
  c.validate(origin);
  Llama2cReader r{file, data_start, origin};
  const std::int64_t L = c.n_layers, D = c.dim, KV = c.kv_dim(), H = c.hidden_dim;
  auto matrix = [&](const std::string& name, Shape shape) {
    return group_size > 0 ? r.take_q8(name, std::move(shape), group_size) : r.take(name, std::move(shape));
  };
  auto per_layer = [&](const std::string& suffix, Shape shape) {
    const bool is_norm = suffix.ends_with("_norm");
    for (std::int64_t l = 0; l < L; ++l) {
      const std::string name = "layers." + std::to_string(l) + "." + suffix;
      w.tensors[name] = is_norm ? r.take(name, shape) : matrix(name, shape);
    }
  };
  // v1 writes norms first; v0 interleaves them in run.c's order.
  if (data_start == 256) {
    per_layer("attention_norm", {D});
    per_layer("ffn_norm", {D});
    w.tensors["norm"] = r.take("norm", {D});
    w.tensors["tok_embeddings"] = matrix("tok_embeddings", {c.vocab_size, D});
  } else {
    w.tensors["tok_embeddings"] = r.take("tok_embeddings", {c.vocab_size, D});
    per_layer("attention_norm", {D});
  }
  per_layer("attention.wq", {D, D});
  per_layer("attention.wk", {KV, D});
  per_layer("attention.wv", {KV, D});
  per_layer("attention.wo", {D, D});
  if (data_start != 256) per_layer("ffn_norm", {D});
  per_layer("feed_forward.w1", {H, D});
  per_layer("feed_forward.w2", {D, H});
  per_layer("feed_forward.w3", {H, D});
  if (data_start != 256) {
    w.tensors["norm"] = r.take("norm", {D});
    r.take("freq_cis_real", {c.max_seq_len, c.head_dim / 2});  // legacy RoPE tables: recomputed, not used
    r.take("freq_cis_imag", {c.max_seq_len, c.head_dim / 2});
  }
  if (shared) w.tied_output = true;
  else w.tensors["output"] = matrix("output", {c.vocab_size, D});
  if (r.pos != f.size())
    throw FormatError(origin + ": " + std::to_string(f.size() - r.pos) + " unexpected trailing bytes after the weights (" +
                      c.summary() + ")");
  return w;
}

}  // namespace pocketlora
