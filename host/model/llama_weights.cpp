#include "host/model/llama_weights.h"

#include <cstring>
#include <fstream>

#include "host/core/error.h"
#include "host/formats/gguf.h"
#include "host/formats/safetensors.h"
#include "host/model/llama2c.h"

namespace pocketlora {

const Tensor& LlamaWeights::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw FormatError(std::string("Llama weights (") + model_source_name(source) + ") have no tensor '" + name + "'");
  return it->second;
}

const DeferredTensor& LlamaWeightSource::at(const std::string& name) const {
  auto it = tensors.find(name == "output" && tied_output ? std::string("tok_embeddings") : name);
  if (it == tensors.end()) throw FormatError(std::string("Llama weights (") + model_source_name(source) + ") have no tensor '" + name + "'");
  return it->second;
}

namespace {

Tensor permute_rows(const Tensor& w, std::int64_t heads, std::int64_t head_dim, bool to_interleaved) {
  if (w.rank() != 2 || w.dim(0) != heads * head_dim || head_dim % 2 != 0)
    throw ShapeError("q/k permutation: weight " + shape_str(w.shape()) + " is not [" + std::to_string(heads) + " * " +
                     std::to_string(head_dim) + ", in] with an even head dim");
  Tensor src = w.to(DType::F32), out = Tensor::zeros(w.shape());
  const std::int64_t cols = w.dim(1), half = head_dim / 2;
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t i = 0; i < half; ++i)
      for (std::int64_t j = 0; j < 2; ++j) {
        const std::int64_t hf = h * head_dim + j * half + i, il = h * head_dim + 2 * i + j;
        const std::int64_t from = to_interleaved ? hf : il, to = to_interleaved ? il : hf;
        std::memcpy(out.data<float>() + to * cols, src.data<float>() + from * cols, static_cast<std::size_t>(cols) * 4);
      }
  return out;
}

void check_shapes(const LlamaWeightSource& w, const std::string& origin) {
  const auto& c = w.config;
  auto expect = [&](const std::string& name, Shape shape) {
    if (name == "output" && w.tied_output) return;  // tok_embeddings' shape, checked below
    auto it = w.tensors.find(name);
    if (it == w.tensors.end()) throw FormatError(origin + ": missing tensor '" + name + "' " + shape_str(shape));
    if (it->second.shape != shape)
      throw FormatError(origin + ": tensor '" + name + "' is " + shape_str(it->second.shape) + ", expected " +
                        shape_str(shape) + " for " + c.summary());
  };
  expect("tok_embeddings", {c.vocab_size, c.dim});
  expect("norm", {c.dim});
  expect("output", {c.vocab_size, c.dim});
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    expect(p + "attention_norm", {c.dim});
    expect(p + "ffn_norm", {c.dim});
    expect(p + "attention.wq", {c.n_heads * c.head_dim, c.dim});
    expect(p + "attention.wk", {c.kv_dim(), c.dim});
    expect(p + "attention.wv", {c.kv_dim(), c.dim});
    expect(p + "attention.wo", {c.dim, c.n_heads * c.head_dim});
    expect(p + "feed_forward.w1", {c.hidden_dim, c.dim});
    expect(p + "feed_forward.w2", {c.dim, c.hidden_dim});
    expect(p + "feed_forward.w3", {c.hidden_dim, c.dim});
  }
}

LlamaWeightSource open_gguf(const std::filesystem::path& path) {
  auto g = std::make_shared<const GgufFile>(GgufFile::open(path));
  LlamaWeightSource w;
  w.source = ModelSource::Gguf;
  w.config = llama_config_from_gguf(*g);
  auto take = [&](const std::string& gguf_name, const std::string& name) {
    const GgufFile::TensorInfo* t = g->find_tensor(gguf_name);
    if (!t) throw FormatError("GGUF file '" + path.string() + "': missing tensor '" + gguf_name + "'");
    w.tensors[name] = {t->row_major_shape(), [g, gguf_name](std::int64_t first, std::int64_t count) {
                         return g->rows_f32(gguf_name, first, count);
                       }};
    if (t->type == GgmlType::F16) w.stored_dtype[name] = DType::F16;
    if (t->type == GgmlType::BF16) w.stored_dtype[name] = DType::BF16;
  };
  take("token_embd.weight", "tok_embeddings");
  take("output_norm.weight", "norm");
  if (g->find_tensor("output.weight")) take("output.weight", "output");
  else w.tied_output = true;
  for (std::int64_t l = 0; l < w.config.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".", p = "layers." + std::to_string(l) + ".";
    take(b + "attn_norm.weight", p + "attention_norm");
    take(b + "ffn_norm.weight", p + "ffn_norm");
    take(b + "attn_q.weight", p + "attention.wq");
    take(b + "attn_k.weight", p + "attention.wk");
    take(b + "attn_v.weight", p + "attention.wv");
    take(b + "attn_output.weight", p + "attention.wo");
    take(b + "ffn_gate.weight", p + "feed_forward.w1");
    take(b + "ffn_down.weight", p + "feed_forward.w2");
    take(b + "ffn_up.weight", p + "feed_forward.w3");
  }
  return w;
}

LlamaWeightSource open_hf(const std::filesystem::path& path) {
  auto ck = std::make_shared<const SafetensorsCheckpoint>(SafetensorsCheckpoint::open(path));
  const auto dir = std::filesystem::is_directory(path) ? path : path.parent_path();
  if (!std::filesystem::exists(dir / "config.json"))
    throw IoError("Hugging Face checkpoint '" + path.string() + "': no config.json next to it");
  LlamaWeightSource w;
  w.source = ModelSource::Safetensors;
  w.config = llama_config_from_hf(dir / "config.json");
  const auto& c = w.config;
  // heads > 0: q/k rows permuted from HF's rotate_half layout to interleaved.
  auto take = [&](const std::string& hf, const std::string& name, std::int64_t heads = 0) {
    const SafetensorsFile::Info& info = ck->at(hf);
    const bool f32 = info.dtype == "F32";
    if (!f32 && info.dtype != "F16" && info.dtype != "BF16")
      throw FormatError("Hugging Face checkpoint '" + path.string() + "': tensor '" + hf + "' has dtype " +
                        info.dtype + ", expected F32, F16 or BF16");
    if (!f32) w.stored_dtype[name] = info.dtype == "F16" ? DType::F16 : DType::BF16;
    const std::int64_t head_dim = c.head_dim;
    w.tensors[name] = {info.shape, [ck, hf, heads, head_dim](std::int64_t first, std::int64_t count) {
                         if (heads == 0) return ck->rows_f32(hf, first, count);
                         // q/k: a row's place depends on its head, so the permutation reads the whole projection.
                         Tensor f = permute_rows_hf_to_interleaved(ck->tensor(hf), heads, head_dim);
                         ck->release_pages(hf);
                         return first == 0 && count == f.dim(0) ? f : f.slice_rows(first, first + count).to(DType::F32);
                       }};
  };
  take("model.embed_tokens.weight", "tok_embeddings");
  take("model.norm.weight", "norm");
  if (ck->find("lm_head.weight") && !c.tied_embeddings) take("lm_head.weight", "output");
  else w.tied_output = true;
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    const std::string h = "model.layers." + std::to_string(l) + ".", p = "layers." + std::to_string(l) + ".";
    take(h + "input_layernorm.weight", p + "attention_norm");
    take(h + "post_attention_layernorm.weight", p + "ffn_norm");
    take(h + "self_attn.q_proj.weight", p + "attention.wq", c.n_heads);
    take(h + "self_attn.k_proj.weight", p + "attention.wk", c.n_kv_heads);
    take(h + "self_attn.v_proj.weight", p + "attention.wv");
    take(h + "self_attn.o_proj.weight", p + "attention.wo");
    take(h + "mlp.gate_proj.weight", p + "feed_forward.w1");
    take(h + "mlp.down_proj.weight", p + "feed_forward.w2");
    take(h + "mlp.up_proj.weight", p + "feed_forward.w3");
  }
  return w;
}

}  // namespace

Tensor permute_rows_hf_to_interleaved(const Tensor& w, std::int64_t heads, std::int64_t head_dim) {
  return permute_rows(w, heads, head_dim, true);
}
Tensor permute_rows_interleaved_to_hf(const Tensor& w, std::int64_t heads, std::int64_t head_dim) {
  return permute_rows(w, heads, head_dim, false);
}

LlamaWeightSource open_llama_weights(const std::filesystem::path& path) {
  std::uint32_t magic = 0;
  if (std::filesystem::is_regular_file(path)) {
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(&magic), 4);
  }
  LlamaWeightSource w;
  try {
    if (magic == 0x46554747u) w = open_gguf(path);
    else if (std::filesystem::is_directory(path) || path.extension() == ".safetensors" || path.extension() == ".json")
      w = open_hf(path);
    else if (path.extension() == ".bin" || looks_like_llama2c_v1(path)) w = open_llama2c(path);
    else
      throw FormatError("'" + path.string() + "': not a GGUF, safetensors or llama2.c checkpoint");
  } catch (const ShapeError& e) {
    // Shape checks inside conversions (q/k permutation, views) do not know the file; the file is what is wrong.
    throw FormatError("checkpoint '" + path.string() + "': " + e.what());
  }
  check_shapes(w, "checkpoint '" + path.string() + "'");
  return w;
}

namespace {
LlamaWeights read_all(const LlamaWeightSource& src, const std::filesystem::path& path) {
  LlamaWeights w;
  w.config = src.config;
  w.source = src.source;
  w.stored_dtype = src.stored_dtype;
  try {
    for (const auto& [name, t] : src.tensors) w.tensors[name] = t.read();
  } catch (const ShapeError& e) {
    throw FormatError("checkpoint '" + path.string() + "': " + e.what());
  }
  if (src.tied_output) w.tensors["output"] = w.tensors.at("tok_embeddings");
  return w;
}
}  // namespace

LlamaWeights load_llama_weights(const std::filesystem::path& path) {
  return read_all(open_llama_weights(path), path);
}

}  // namespace pocketlora
