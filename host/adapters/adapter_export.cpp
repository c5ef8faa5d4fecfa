#include "host/adapters/adapter_export.h"

#include <unistd.h>

#include "host/adapters/adapter_merge.h"
#include "host/adapters/adapter_modules.h"
#include "host/adapters/gguf_lora.h"
#include "host/adapters/merged_gguf.h"
#include "host/adapters/merged_safetensors.h"
#include "host/core/error.h"
#include "host/formats/gguf.h"
#include "host/model/bnb4bit.h"
#include "host/model/llama_weights.h"

namespace pocketlora {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_gguf_file(const fs::path& p) {
  if (!fs::is_regular_file(p)) return false;
  std::FILE* f = std::fopen(p.c_str(), "rb");
  if (!f) return false;
  char magic[4] = {};
  const bool ok = std::fread(magic, 1, 4, f) == 4 && std::string(magic, 4) == "GGUF";
  std::fclose(f);
  return ok;
}

// A bnb-4bit base as the f32 weights the QLoRA forward computes with: each NF4 linear dequantized, q/k rows moved
// from HF's rotate_half order to the interleaved order of every other loaded base.
LlamaWeights dequantized_bnb4bit(const fs::path& model) {
  const Bnb4bitModel m = load_bnb4bit(model);
  const LlamaConfig& c = m.config;
  const std::string origin = "bnb-4bit checkpoint '" + model.string() + "'";
  LlamaWeights w;
  w.config = c;
  w.source = ModelSource::Bnb4bit;
  const auto other = [&](const std::string& hf) {
    auto it = m.others.find(hf);
    if (it == m.others.end()) throw FormatError(origin + ": missing tensor '" + hf + "'");
    return it->second.to(DType::F32);
  };
  const auto linear = [&](const std::string& hf, std::int64_t qk_heads) {
    auto it = m.linears.find(hf);
    if (it == m.linears.end()) throw FormatError(origin + ": missing NF4 linear '" + hf + "'");
    const Tensor t = dequantize_nf4(it->second).to(DType::F32);
    return qk_heads ? permute_rows_hf_to_interleaved(t, qk_heads, c.head_dim) : t;
  };
  w.tensors["tok_embeddings"] = other("model.embed_tokens.weight");
  w.tensors["norm"] = other("model.norm.weight");
  w.tensors["output"] = c.tied_embeddings ? w.tensors["tok_embeddings"] : other("lm_head.weight");
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    w.tensors[p + "attention_norm"] = other(h + "input_layernorm.weight");
    w.tensors[p + "ffn_norm"] = other(h + "post_attention_layernorm.weight");
    for (const auto& mod : kAdapterModules) {
      const std::string name = mod.name;
      const std::int64_t qk_heads = name == "q" ? c.n_heads : name == "k" ? c.n_kv_heads : 0;
      w.tensors[p + mod.weights] = linear(h + mod.peft_path + ".weight", qk_heads);
    }
  }
  return w;
}

// The base as f32 weights with q/k rows interleaved, whichever of the four sources it is.
LlamaWeights load_base(const fs::path& model) {
  return is_bnb4bit_checkpoint(model) ? dequantized_bnb4bit(model) : load_llama_weights(model);
}

}  // namespace

ExportFormat parse_export_format(const std::string& s) {
  if (s == "peft") return ExportFormat::Peft;
  if (s == "gguf") return ExportFormat::Gguf;
  if (s == "merged") return ExportFormat::Merged;
  throw InvalidArgument("--format '" + s + "': expected peft, gguf or merged");
}

PeftAdapter read_lora_adapter(const fs::path& path, const LlamaConfig& model, RopeLayout qk_layout) {
  if (fs::is_directory(path)) return read_peft_adapter(path, model, qk_layout);
  if (is_gguf_file(path)) return read_gguf_lora(path, model, qk_layout);
  throw IoError("adapter '" + path.string() + "': expected a PEFT directory (adapter_config.json + "
                "adapter_model.safetensors) or a GGUF LoRA file");
}

ExportResult export_adapter(const ExportOptions& opt) {
  const std::string& dt = opt.dtype;
  const bool to_gguf_file = ends_with(opt.out.string(), ".gguf");
  switch (opt.format) {
    case ExportFormat::Peft:
      if (dt != "f32") throw InvalidArgument("--dtype '" + dt + "' with --format peft: PEFT adapters are written f32");
      break;
    case ExportFormat::Gguf:
      if (dt != "f32" && dt != "f16")
        throw InvalidArgument("--dtype '" + dt + "' with --format gguf: expected f32 or f16");
      break;
    case ExportFormat::Merged:
      if (dt == "nf4") break;
      if (dt == "q8_0" || dt == "q4_0" || dt == "q4_k_m") {
        if (!to_gguf_file)
          throw InvalidArgument("--dtype " + dt + " is a GGUF type: --out must name a .gguf file (found '" +
                                opt.out.string() + "')");
        break;
      }
      if (dt != "f32" && dt != "f16")
        throw InvalidArgument("--dtype '" + dt + "' with --format merged: expected f32, f16, q8_0, q4_0, q4_k_m or nf4");
      break;
  }

  LlamaWeights base = load_base(opt.model);
  // The adapter in the row order of the weights just loaded (q/k interleaved); each writer moves rows as its
  // format needs.
  const PeftAdapter adapter = read_lora_adapter(opt.adapter, base.config, RopeLayout::Interleaved);
  if (opt.format == ExportFormat::Peft) {
    write_peft_adapter(opt.out, adapter, base.config, RopeLayout::Interleaved);
    return {opt.out, "PEFT adapter (" + std::to_string(adapter.tensors.size()) + " tensors)"};
  }
  if (opt.format == ExportFormat::Gguf) {
    write_gguf_lora(opt.out, adapter, base.config, RopeLayout::Interleaved, dt == "f16" ? DType::F16 : DType::F32);
    return {opt.out, "GGUF LoRA adapter, " + dt + " (" + std::to_string(adapter.tensors.size()) + " tensors)"};
  }

  merge_lora_into(base, adapter);
  const std::string name = opt.model.stem().string() + "+" + opt.adapter.filename().string();
  if (dt == "nf4") {
    // bnb-4bit writing quantizes a checkpoint file: stage the merged f32 model as an HF directory beside --out.
    const fs::path out_file = ends_with(opt.out.string(), ".safetensors") ? opt.out : opt.out / "model.safetensors";
    std::error_code ec;
    fs::create_directories(out_file.parent_path().empty() ? fs::path(".") : out_file.parent_path(), ec);
    if (ec) throw IoError("cannot create '" + out_file.parent_path().string() + "': " + ec.message());
    const fs::path stage = out_file.parent_path() / (".merge-stage." + std::to_string(::getpid()));
    try {
      write_llama_safetensors(stage, base, DType::F32, std::nullopt);
      const std::size_t n = write_bnb4bit(stage / "model.safetensors", out_file, DType::F16);
      fs::remove_all(stage, ec);
      return {out_file, "merged bnb-4bit NF4 checkpoint (" + std::to_string(n) + " NF4 linears)"};
    } catch (...) {
      fs::remove_all(stage, ec);
      throw;
    }
  }
  if (to_gguf_file) {
    const GgufFileType ftype = parse_gguf_file_type(dt);
    const std::optional<fs::path> tok = is_gguf_file(opt.model) ? std::optional<fs::path>(opt.model) : std::nullopt;
    write_llama_gguf(opt.out, base, ftype, tok, name);
    return {opt.out, "merged GGUF " + dt + (tok ? ", tokenizer from the base" : ", no tokenizer metadata")};
  }
  const fs::path model_dir = fs::is_directory(opt.model) ? opt.model : opt.model.parent_path();
  const bool hf_base = (base.source == ModelSource::Safetensors || base.source == ModelSource::Bnb4bit) &&
                       fs::exists(model_dir / "config.json");
  write_llama_safetensors(opt.out, base, dt == "f16" ? DType::F16 : DType::F32,
                          hf_base ? std::optional<fs::path>(model_dir / "config.json") : std::nullopt);
  return {opt.out, "merged Hugging Face checkpoint, " + dt};
}

}  // namespace pocketlora
