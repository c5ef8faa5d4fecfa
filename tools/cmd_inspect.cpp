// `pocketlora inspect FILE [--json]`: format, metadata, tensors (name, dtype, shape, bytes) and the derived Llama
// config of any supported checkpoint (GGUF, safetensors file / sharded index / directory, llama2.c .bin).
#include <cstdio>
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/formats/gguf.h"
#include "host/formats/safetensors.h"
#include "host/model/llama2c.h"
#include "host/model/llama_config.h"
#include "host/model/llama_weights.h"
#include "tools/command_registry.h"

namespace pocketlora::cli {
namespace {

struct Row {
  std::string name, dtype;
  Shape shape;
  std::uint64_t bytes;
};

std::string value_str(const GgufValue& v, bool full) {
  return std::visit(
      [&](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) return "\"" + (full || x.size() < 80 ? x : x.substr(0, 77) + "...") + "\"";
        else if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
        else if constexpr (std::is_same_v<T, std::vector<GgufValue>>) {
          std::string s = "[";
          const std::size_t shown = full ? x.size() : std::min<std::size_t>(x.size(), 6);
          for (std::size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + value_str(x[i], full);
          if (shown < x.size()) s += fmt::format(", ... ({} items)", x.size());
          return s + "]";
        } else return fmt::format("{}", x);
      },
      v.v);
}

int run(const std::string& path, bool json) {
  nlohmann::json out;
  std::vector<Row> rows;
  std::uint32_t magic = 0;
  {
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(&magic), 4);
  }
  std::optional<LlamaConfig> cfg;
  std::string config_error;
  if (magic == 0x46554747u) {
    auto g = GgufFile::open(path);
    out["format"] = fmt::format("GGUF v{}", g.version());
    for (auto& [k, v] : g.metadata()) out["metadata"][k] = value_str(v, false);
    for (auto& t : g.tensors()) rows.push_back({t.name, ggml_type_name(t.type), t.row_major_shape(), t.nbytes});
    try {
      cfg = llama_config_from_gguf(g);
    } catch (const std::exception& e) {
      config_error = e.what();
    }
  } else if (std::filesystem::is_directory(path) || path.ends_with(".safetensors") || path.ends_with(".json")) {
    auto c = SafetensorsCheckpoint::open(path);
    out["format"] = fmt::format("safetensors ({} shard{})", c.shards().size(), c.shards().size() == 1 ? "" : "s");
    for (auto& s : c.shards())
      for (auto& [k, v] : s.metadata()) out["metadata"][k] = v;
    for (auto* t : c.tensors()) rows.push_back({t->name, t->dtype, t->shape, t->nbytes});
    const auto dir = std::filesystem::is_directory(path) ? std::filesystem::path(path) : std::filesystem::path(path).parent_path();
    if (std::filesystem::exists(dir / "config.json")) {
      try {
        cfg = llama_config_from_hf(dir / "config.json");
      } catch (const std::exception& e) {
        config_error = e.what();
      }
    }
  } else {
    auto w = load_llama2c(path);
    out["format"] = looks_like_llama2c_v1(path) ? "llama2.c (version 1, fp32)" : "llama2.c (legacy v0, fp32)";
    for (auto& [name, t] : w.tensors)
      if (!(name == "output" && w.config.tied_embeddings)) rows.push_back({name, "F32", t.shape(), t.nbytes()});
    cfg = w.config;
  }
  std::uint64_t total = 0;
  for (auto& r : rows) {
    total += r.bytes;
    out["tensors"].push_back({{"name", r.name}, {"dtype", r.dtype}, {"shape", r.shape}, {"bytes", r.bytes}});
  }
  out["tensor_count"] = rows.size();
  out["total_bytes"] = total;
  if (cfg) {
    out["llama_config"] = {{"dim", cfg->dim}, {"hidden_dim", cfg->hidden_dim}, {"n_layers", cfg->n_layers},
                           {"n_heads", cfg->n_heads}, {"n_kv_heads", cfg->n_kv_heads}, {"head_dim", cfg->head_dim},
                           {"vocab_size", cfg->vocab_size}, {"max_seq_len", cfg->max_seq_len},
                           {"rms_eps", cfg->rms_eps}, {"rope_theta", cfg->rope_theta},
                           {"llama3_rope_scaling", cfg->rope_scaling.has_value()},
                           {"tied_embeddings", cfg->tied_embeddings}};
  } else if (!config_error.empty()) {
    out["llama_config_error"] = config_error;
  }
  if (json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  fmt::print("file: {}\nformat: {}\n", path, out["format"].get<std::string>());
  if (out.contains("metadata")) {
    fmt::print("metadata:\n");
    for (auto& [k, v] : out["metadata"].items()) fmt::print("  {} = {}\n", k, v.get<std::string>());
  }
  if (cfg) fmt::print("llama config: {}\n", cfg->summary());
  if (!config_error.empty()) fmt::print("llama config: not derivable ({})\n", config_error);
  fmt::print("tensors ({}, {:.2f} MiB):\n", rows.size(), static_cast<double>(total) / (1 << 20));
  for (auto& r : rows) fmt::print("  {:<48} {:<5} {:<16} {}\n", r.name, r.dtype, shape_str(r.shape), r.bytes);
  return 0;
}

CommandRegistration register_cmd_inspect("inspect", "Show format, metadata, tensors and Llama config of a checkpoint", [](CLI::App& sub) {
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  sub.add_option("file", *path, "GGUF, safetensors (file, index or directory) or llama2.c .bin")->required();
  sub.add_flag("--json", *json, "Machine-readable output");
  return [path, json] { return run(*path, *json); };
});

}  // namespace
}  // namespace pocketlora::cli
