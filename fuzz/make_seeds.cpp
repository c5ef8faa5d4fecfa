// Seed corpus for the fuzz targets, built from the real files in shared/data at run time (never committed):
// small real files as they are, and cut-down copies of the big ones (a tiny Llama from stories260K's leading
// rows/columns in every model format, vocabularies trimmed to their first entries) so each seed parses fully
// and runs in microseconds.   usage: pocketlora_fuzz_seeds DATA_DIR OUT_DIR  (writes OUT_DIR/<target>/...)
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "fuzz/tiny_model.h"
#include "host/core/error.h"
#include "host/formats/gguf.h"
#include "host/formats/gguf_writer.h"
#include "host/formats/safetensors.h"
#include "host/model/bnb4bit.h"
#include "host/model/llama_weights.h"
#include "host/util/splitmix64.h"

namespace fs = std::filesystem;
using namespace pocketlora;
using fuzz::TinyModel;

namespace {

constexpr std::size_t kVocabKeep = 600;  // entries kept of a trimmed vocabulary

std::string read_bytes(const fs::path& p, std::size_t limit = SIZE_MAX) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw IoError("seeds: cannot read " + p.string());
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.size() > limit) s.resize(limit);
  return s;
}

void write_bytes(const fs::path& p, std::string_view s) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

// Top-left block [rows, cols] (or the first `rows` values of a 1-D tensor) as a new f32 tensor.
Tensor cut(const Tensor& t, std::int64_t rows, std::int64_t cols = 0) {
  const Tensor f = t.to(DType::F32);
  if (cols == 0) return Tensor::from_vector({f.data<float>(), f.data<float>() + rows}, {rows});
  std::vector<float> v;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) v.push_back(f.data<float>()[r * f.dim(1) + c]);
  return Tensor::from_vector(v, {rows, cols});
}

// The tiny model (internal llama2.c names, interleaved q/k) cut from stories260K.
std::map<std::string, Tensor> tiny_weights(const fs::path& data) {
  const auto w = load_llama_weights(data / "models/stories260K/stories260K.bin");
  const std::int64_t D = TinyModel::dim, H = TinyModel::hidden_dim, V = TinyModel::vocab;
  const std::int64_t KV = TinyModel::n_kv_heads * (D / TinyModel::n_heads);
  return {{"tok_embeddings", cut(w.at("tok_embeddings"), V, D)},
          {"norm", cut(w.at("norm"), D)},
          {"layers.0.attention_norm", cut(w.at("layers.0.attention_norm"), D)},
          {"layers.0.ffn_norm", cut(w.at("layers.0.ffn_norm"), D)},
          {"layers.0.attention.wq", cut(w.at("layers.0.attention.wq"), D, D)},
          {"layers.0.attention.wk", cut(w.at("layers.0.attention.wk"), KV, D)},
          {"layers.0.attention.wv", cut(w.at("layers.0.attention.wv"), KV, D)},
          {"layers.0.attention.wo", cut(w.at("layers.0.attention.wo"), D, D)},
          {"layers.0.feed_forward.w1", cut(w.at("layers.0.feed_forward.w1"), H, D)},
          {"layers.0.feed_forward.w2", cut(w.at("layers.0.feed_forward.w2"), D, H)},
          {"layers.0.feed_forward.w3", cut(w.at("layers.0.feed_forward.w3"), H, D)},
          {"output", cut(w.at("tok_embeddings"), V, D)}};
}

void append(std::string& out, const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); }
void append(std::string& out, const Tensor& t) { append(out, t.raw(), t.nbytes()); }

// llama2.c legacy v0 (run.c order, RoPE tables included) or export.py version 1 (256-byte header, norms first).
std::string llama2c_file(const std::map<std::string, Tensor>& w, int version, bool shared) {
  std::string out;
  std::int32_t h[7] = {TinyModel::dim,        TinyModel::hidden_dim, TinyModel::n_layers, TinyModel::n_heads,
                       TinyModel::n_kv_heads, TinyModel::vocab,      TinyModel::seq_len};
  const auto L = [&](const char* s) { return w.at(std::string("layers.0.") + s); };
  if (version == 0) {
    if (!shared) h[5] = -h[5];
    append(out, h, sizeof h);
    append(out, w.at("tok_embeddings"));
    append(out, L("attention_norm"));
  } else {
    const std::uint32_t magic = 0x616b3432;  // "ak42" as export.py packs it (little-endian uint32)
    const std::int32_t v = version;
    append(out, &magic, 4);
    append(out, &v, 4);
    append(out, h, sizeof h);
    out.push_back(shared ? 1 : 0);
    out.resize(256, '\0');
    append(out, L("attention_norm"));
    append(out, L("ffn_norm"));
    append(out, w.at("norm"));
    append(out, w.at("tok_embeddings"));
  }
  for (const char* m : {"attention.wq", "attention.wk", "attention.wv", "attention.wo"}) append(out, L(m));
  if (version == 0) append(out, L("ffn_norm"));
  for (const char* m : {"feed_forward.w1", "feed_forward.w2", "feed_forward.w3"}) append(out, L(m));
  if (version == 0) {
    append(out, w.at("norm"));
    const std::vector<float> rope(2 * TinyModel::seq_len * (TinyModel::dim / TinyModel::n_heads) / 2, 0.5f);
    append(out, rope.data(), rope.size() * 4);
  }
  if (!shared) append(out, w.at("output"));
  return out;
}

// GGUF: llama metadata, the tiny model's tensors as f32 (or f16 matrices), plus one tensor of every quantized
// type the reader knows (real Q4_0 / Q8_0 blocks from the mixed stories260K files, deterministic bytes for the
// others) so load_f32 reaches every dequantizer.
void write_gguf_model(const fs::path& data, const std::map<std::string, Tensor>& w, bool f16, bool quant_extras,
                      const fs::path& out) {
  GgufWriter g;
  g.set_string("general.architecture", "llama");
  g.set_u32("llama.embedding_length", TinyModel::dim);
  g.set_u32("llama.feed_forward_length", TinyModel::hidden_dim);
  g.set_u32("llama.block_count", TinyModel::n_layers);
  g.set_u32("llama.attention.head_count", TinyModel::n_heads);
  g.set_u32("llama.attention.head_count_kv", TinyModel::n_kv_heads);
  g.set_u32("llama.context_length", TinyModel::seq_len);
  g.set_u32("llama.vocab_size", TinyModel::vocab);
  g.set_u32("llama.rope.dimension_count", TinyModel::dim / TinyModel::n_heads);
  g.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  g.set_f32("llama.rope.freq_base", 10000.0f);
  const std::pair<const char*, const char*> names[] = {
      {"token_embd.weight", "tok_embeddings"},          {"output_norm.weight", "norm"},
      {"blk.0.attn_norm.weight", "layers.0.attention_norm"}, {"blk.0.ffn_norm.weight", "layers.0.ffn_norm"},
      {"blk.0.attn_q.weight", "layers.0.attention.wq"},  {"blk.0.attn_k.weight", "layers.0.attention.wk"},
      {"blk.0.attn_v.weight", "layers.0.attention.wv"},  {"blk.0.attn_output.weight", "layers.0.attention.wo"},
      {"blk.0.ffn_gate.weight", "layers.0.feed_forward.w1"}, {"blk.0.ffn_down.weight", "layers.0.feed_forward.w2"},
      {"blk.0.ffn_up.weight", "layers.0.feed_forward.w3"}};
  for (auto& [gname, name] : names) {
    const Tensor& t = w.at(name);
    g.add_tensor(gname, f16 && t.rank() == 2 ? t.to(DType::F16) : t);
  }
  if (quant_extras) {
    for (const auto& [type, file] : {std::pair{GgmlType::Q4_0, "stories260K-mixed-Q4_0.gguf"},
                                     std::pair{GgmlType::Q8_0, "stories260K-mixed-Q8_0.gguf"}}) {
      const auto src = GgufFile::open(data / "models/stories260K/derived" / file);
      for (auto& t : src.tensors())
        if (t.type == type) {
          const auto [elems, bytes] = ggml_block_layout(type);
          g.add_raw_tensor(std::string("extra.") + ggml_type_name(type), type, {elems * 2, 1},
                           {t.data, t.data + 2 * bytes});
          break;
        }
    }
    std::uint64_t state = 42;
    for (const GgmlType t : {GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K,
                             GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K,
                             GgmlType::BF16}) {
      const auto [elems, bytes] = ggml_block_layout(t);
      if (elems == 0) continue;  // a type the reader does not dequantize
      std::vector<std::uint8_t> raw(static_cast<std::size_t>(bytes));
      for (auto& b : raw) b = static_cast<std::uint8_t>(splitmix64(state) & 0x3F);  // small scales: finite values
      g.add_raw_tensor(std::string("extra.") + ggml_type_name(t), t, {elems, 1}, raw);
    }
  }
  g.write(out);
}

// HF names, q/k rows permuted to rotate_half as transformers stores them.
std::vector<std::pair<std::string, Tensor>> hf_tensors(const std::map<std::string, Tensor>& w, DType matrix_dtype) {
  const std::int64_t hd = TinyModel::dim / TinyModel::n_heads;
  auto m = [&](const Tensor& t) { return t.to(matrix_dtype); };
  return {{"model.embed_tokens.weight", m(w.at("tok_embeddings"))},
          {"model.norm.weight", w.at("norm")},
          {"model.layers.0.input_layernorm.weight", w.at("layers.0.attention_norm")},
          {"model.layers.0.post_attention_layernorm.weight", w.at("layers.0.ffn_norm")},
          {"model.layers.0.self_attn.q_proj.weight",
           m(permute_rows_interleaved_to_hf(w.at("layers.0.attention.wq"), TinyModel::n_heads, hd))},
          {"model.layers.0.self_attn.k_proj.weight",
           m(permute_rows_interleaved_to_hf(w.at("layers.0.attention.wk"), TinyModel::n_kv_heads, hd))},
          {"model.layers.0.self_attn.v_proj.weight", m(w.at("layers.0.attention.wv"))},
          {"model.layers.0.self_attn.o_proj.weight", m(w.at("layers.0.attention.wo"))},
          {"model.layers.0.mlp.gate_proj.weight", m(w.at("layers.0.feed_forward.w1"))},
          {"model.layers.0.mlp.down_proj.weight", m(w.at("layers.0.feed_forward.w2"))},
          {"model.layers.0.mlp.up_proj.weight", m(w.at("layers.0.feed_forward.w3"))}};
}

// A GGUF holding only the metadata of `src` (no tensors), every array cut to its first kVocabKeep entries.
void write_gguf_vocab(const fs::path& src, const fs::path& out) {
  const auto g = GgufFile::open(src);
  GgufWriter w;
  for (auto [key, v] : g.metadata()) {
    if (key == "general.alignment") continue;  // the writer sets it
    if (auto* arr = std::get_if<std::vector<GgufValue>>(&v.v); arr && arr->size() > kVocabKeep) arr->resize(kVocabKeep);
    w.set(key, v);
  }
  w.write(out);
}

// SentencePiece ModelProto with only the first kVocabKeep pieces (field 1); other top-level fields kept.
std::string trimmed_sentencepiece(const std::string& in) {
  std::string out;
  std::size_t p = 0, pieces = 0;
  auto varint = [&] {
    std::uint64_t v = 0;
    for (int s = 0; p < in.size(); s += 7) {
      const auto b = static_cast<std::uint8_t>(in[p++]);
      v |= static_cast<std::uint64_t>(b & 0x7F) << s;
      if (!(b & 0x80)) break;
    }
    return v;
  };
  while (p < in.size()) {
    const std::size_t start = p;
    const std::uint64_t tag = varint();
    if ((tag & 7) != 2) throw FormatError("seeds: tokenizer.model has a top-level field that is not length-delimited");
    const std::uint64_t n = varint();
    p += n;
    if ((tag >> 3) != 1 || pieces++ < kVocabKeep) out += in.substr(start, p - start);
  }
  return out;
}

// tokenizer.json with the first kVocabKeep vocabulary entries, the merges among them, and the added tokens
// renumbered to follow (the reader wants ids without holes).
std::string trimmed_tokenizer_json(const fs::path& p) {
  // Not ordered_json: its linear key lookup makes parsing a 128k-entry vocabulary quadratic.
  auto j = nlohmann::json::parse(read_bytes(p));
  nlohmann::json vocab = nlohmann::json::object();
  std::set<std::string> kept;
  for (auto& [k, v] : j["model"]["vocab"].items())
    if (v.get<std::int64_t>() < static_cast<std::int64_t>(kVocabKeep)) {
      vocab[k] = v;
      kept.insert(k);
    }
  nlohmann::json merges = nlohmann::json::array();
  for (auto& m : j["model"]["merges"]) {
    std::string a, b;
    if (m.is_string()) {
      const auto s = m.get<std::string>();
      const auto sp = s.find(' ');
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    }
    if (kept.count(a) && kept.count(b) && kept.count(a + b)) merges.push_back(m);
  }
  j["model"]["vocab"] = vocab;
  j["model"]["merges"] = merges;
  nlohmann::json added = nlohmann::json::array();
  for (std::size_t i = 0; i < 12 && i < j["added_tokens"].size(); ++i) {
    auto t = j["added_tokens"][i];
    t["id"] = kVocabKeep + i;
    added.push_back(t);
  }
  j["added_tokens"] = added;
  if (j.contains("post_processor")) j["post_processor"] = nullptr;
  return j.dump();
}

void write_datasets(const fs::path& data, const fs::path& out) {
  const auto all = nlohmann::json::parse(read_bytes(data / "datasets/alpaca_en_demo.json"));
  nlohmann::json first = nlohmann::json::array();
  std::string jsonl, chat;
  for (std::size_t i = 0; i < 3; ++i) {
    first.push_back(all[i]);
    jsonl += all[i].dump() + "\n";
    nlohmann::json msgs = {{{"role", "system"}, {"content", "You are helpful."}},
                           {{"role", "user"}, {"content", all[i]["instruction"]}},
                           {{"role", "assistant"}, {"content", all[i]["output"]}}};
    chat += nlohmann::json{{"messages", msgs}}.dump() + "\n";
  }
  // one record with a non-empty input field
  for (auto& r : all)
    if (!r["input"].get<std::string>().empty()) {
      first.push_back(r);
      break;
    }
  write_bytes(out / "alpaca.json", first.dump(1));
  write_bytes(out / "alpaca.jsonl", jsonl);
  write_bytes(out / "chat.jsonl", chat);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DATA_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path data = argv[1], out = argv[2];
  try {
    for (const char* t : {"gguf", "gguf_vocab", "safetensors"}) fs::create_directories(out / t);  // the writers need the folder
    const auto w = tiny_weights(data);
    const auto m = data / "models/stories260K";

    write_bytes(out / "llama2c/tiny-v0-shared.bin", llama2c_file(w, 0, true));
    write_bytes(out / "llama2c/tiny-v0-untied.bin", llama2c_file(w, 0, false));
    write_bytes(out / "llama2c/tiny-v1.bin", llama2c_file(w, 1, true));
    write_bytes(out / "llama2c/stories260K-head.bin", read_bytes(m / "stories260K.bin", 1024));

    write_gguf_model(data, w, false, true, out / "gguf/tiny-f32-quant-extras.gguf");
    write_gguf_model(data, w, true, false, out / "gguf/tiny-f16.gguf");
    write_bytes(out / "gguf/stories260K-Q4_0-head.gguf", read_bytes(m / "derived/stories260K-mixed-Q4_0.gguf", 16384));

    write_safetensors(out / "safetensors/tiny-f32.safetensors", hf_tensors(w, DType::F32), {{"format", "pt"}});
    write_safetensors(out / "safetensors/tiny-bf16.safetensors", hf_tensors(w, DType::BF16));
    write_bytes(out / "safetensors/nf4-s0_3x5.safetensors", read_bytes(data / "nf4-bnb/s0_3x5.input.safetensors"));

    // bnb-4bit: the project's own quantizer applied to the tiny llama2.c model (same file transformers saves).
    const auto tmp = out / ".bnb-tmp";
    write_bytes(tmp / "tiny.bin", llama2c_file(w, 0, true));
    fs::create_directories(tmp / "out");
    write_bnb4bit(tmp / "tiny.bin", tmp / "out/model.safetensors");
    write_bytes(out / "bnb4bit/tiny-nf4.safetensors", read_bytes(tmp / "out/model.safetensors"));
    fs::remove_all(tmp);

    write_bytes(out / "hf_config/stories260K-config.json", read_bytes(m / "derived/hf/config.json"));
    write_bytes(out / "hf_config/tiny-config.json", fuzz::kTinyConfigJson);
    auto llama3 = nlohmann::json::parse(read_bytes(m / "derived/hf/config.json"));
    llama3["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 32.0}, {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
    write_bytes(out / "hf_config/llama3-rope-scaling.json", llama3.dump(2));

    write_bytes(out / "spm_model/llama2-trimmed.model",
                trimmed_sentencepiece(read_bytes(data / "tokenizers/llama2/tokenizer.model")));
    write_bytes(out / "tokenizer_bin/tok512.bin", read_bytes(m / "tok512.bin"));
    write_bytes(out / "tokenizer_json/llama3-trimmed.json", trimmed_tokenizer_json(data / "tokenizers/llama3/tokenizer.json"));
    write_gguf_vocab(data / "tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf", out / "gguf_vocab/llama-spm-trimmed.gguf");
    write_gguf_vocab(m / "derived/stories260K-f32.gguf", out / "gguf_vocab/stories260K-vocab.gguf");

    write_datasets(data, out / "dataset");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pocketlora_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
