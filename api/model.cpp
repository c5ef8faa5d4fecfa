// pl_model: load a model for generation and as the base of train jobs.
#include "api/model.h"

#include <nlohmann/json.hpp>

#include "api/runtime.h"
#include "host/core/error.h"
#include "host/train/trainer.h"

using namespace pocketlora;
using namespace pocketlora::capi;

extern "C" {

pl_status pl_model_load(pl_runtime* rt, const char* model_path, const char* tokenizer_path, const char* quant,
                        pl_model** out) {
  return guarded("pl_model_load", [&] {
    auto r = get<pl_runtime>(rt, "pl_model_load", "pl_runtime");
    require(model_path, "pl_model_load", "model_path");
    require(out, "pl_model_load", "out");
    *out = nullptr;
    auto m = std::make_shared<pl_model>();
    m->path = model_path;
    if (!std::filesystem::exists(m->path)) throw IoError(fmt::format("{}: model not found", m->path.string()));
    m->kind = r->kind;
    m->device = r->device;
    // Deferred: the base is converted when generation uploads it or a train job's engine does, never held whole on
    // the host (docs/MEMORY.md).
    m->model = load_llama_model(m->path, parse_base_quant(quant ? quant : "none"), BaseLoad::Deferred);
    m->tokenizer_path = tokenizer_path ? std::filesystem::path(tokenizer_path) : find_tokenizer(m->path);
    m->tok = load_tokenizer(m->tokenizer_path);
    if (m->tok->vocab_size() > m->model.config.vocab_size)
      throw InvalidArgument(fmt::format("pl_model_load: tokenizer {} has {} tokens, the model's vocabulary {}",
                                        m->tokenizer_path.string(), m->tok->vocab_size(), m->model.config.vocab_size));
    m->be = make_backend(m->kind, m->device);
    m->backend_description = m->be->describe();
    register_handle(m);
    *out = m.get();
  });
}

pl_status pl_model_info(pl_model* model, char** json_out) {
  return guarded("pl_model_info", [&] {
    auto m = get<pl_model>(model, "pl_model_info", "pl_model");
    require(json_out, "pl_model_info", "json_out");
    const LlamaConfig& c = m->model.config;
    const nlohmann::json j = {{"path", m->path.string()},       {"tokenizer", m->tokenizer_path.string()},
                              {"dim", c.dim},                   {"n_layers", c.n_layers},
                              {"n_heads", c.n_heads},           {"n_kv_heads", c.n_kv_heads},
                              {"vocab_size", c.vocab_size},     {"max_seq_len", c.max_seq_len},
                              {"backend", m->backend_description}};
    *json_out = copy_string(j.dump());
  });
}

pl_status pl_model_free(pl_model* model) {
  return guarded("pl_model_free", [&] { release<pl_model>(model, "pl_model_free", "pl_model"); });
}

}  // extern "C"
