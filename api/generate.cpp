// pl_generate: streaming generation on a model, with or without a store adapter, cancellable from another thread.
#include <algorithm>
#include <atomic>
#include <cmath>

#include "api/adapter_store.h"
#include "api/model.h"
#include "host/core/error.h"
#include "host/infer/generate.h"
#include "host/infer/text_stream.h"

using namespace pocketlora;
using namespace pocketlora::capi;

struct pl_generation : Handle {
  std::atomic<bool> cancelled{false};
};

extern "C" {

void pl_generate_params_init(pl_generate_params* p) {
  if (!p) return;
  p->max_tokens = 128;
  p->temperature = 0.0f;
  p->top_k = 0;
  p->top_p = 1.0f;
  p->seed = 0;
}

pl_status pl_generation_create(pl_generation** out) {
  return guarded("pl_generation_create", [&] {
    require(out, "pl_generation_create", "out");
    auto g = std::make_shared<pl_generation>();
    register_handle(g);
    *out = g.get();
  });
}

pl_status pl_generation_cancel(pl_generation* gen) {
  return guarded("pl_generation_cancel",
                 [&] { get<pl_generation>(gen, "pl_generation_cancel", "pl_generation")->cancelled = true; });
}

pl_status pl_generation_destroy(pl_generation* gen) {
  return guarded("pl_generation_destroy",
                 [&] { release<pl_generation>(gen, "pl_generation_destroy", "pl_generation"); });
}

pl_status pl_generate(pl_model* model, pl_generation* gen, pl_adapter_store* store, const char* adapter, float scale,
                      const char* prompt, const pl_generate_params* params, pl_token_callback on_piece,
                      void* user_data, char** text_out) {
  if (text_out) *text_out = nullptr;
  return guarded("pl_generate", [&] {
    auto m = get<pl_model>(model, "pl_generate", "pl_model");
    std::shared_ptr<pl_generation> g = gen ? get<pl_generation>(gen, "pl_generate", "pl_generation") : nullptr;
    std::shared_ptr<pl_adapter_store> s;
    if (adapter) {
      if (!store)
        throw InvalidArgument(fmt::format("pl_generate: adapter '{}' given without the store that holds it", adapter));
      s = get<pl_adapter_store>(store, "pl_generate", "pl_adapter_store");
      if (!std::isfinite(scale))
        throw InvalidArgument(fmt::format("pl_generate: adapter '{}': scale {} is not finite", adapter, scale));
    }
    require(prompt, "pl_generate", "prompt");
    pl_generate_params p;
    pl_generate_params_init(&p);
    if (params) p = *params;
    GenerateOptions opt;
    if (p.max_tokens < 1)
      throw InvalidArgument(fmt::format("pl_generate: max_tokens must be at least 1, got {}", p.max_tokens));
    opt.max_tokens = p.max_tokens;
    opt.sampling.temperature = p.temperature;
    opt.sampling.top_k = p.top_k;
    opt.sampling.top_p = p.top_p;
    opt.sampling.seed = p.seed;
    opt.sampling.validate();

    std::lock_guard lock(m->mu);
    if (!m->decoder) m->decoder = std::make_unique<Decoder>(*m->be, upload_llama(*m->be, m->model));
    if (adapter) {
      std::lock_guard store_lock(s->mu);
      opt.adapters.push_back({m->resident.index(*m->decoder, m->model, m->path, s->store, adapter), scale});
    }
    const Tokenizer& tok = *m->tok;
    const std::vector<std::int32_t> ids = tok.encode(prompt, tok.bos_id().has_value());
    if (const auto eos = tok.eos_id()) opt.stop = {*eos};

    TextStream stream(tok);
    std::string text;
    std::int64_t generated = 0;
    auto emit = [&](const std::string& piece) {
      if (piece.empty()) return;
      text += piece;
      if (on_piece) on_piece(piece.c_str(), piece.size(), user_data);
    };
    auto cancelled = [&] {
      if (g && g->cancelled) {
        if (text_out) *text_out = copy_string(text);
        throw CancelledError(fmt::format("pl_generate: cancelled after {} tokens", generated));
      }
    };
    cancelled();
    generate(*m->decoder, ids, opt, [&](std::int32_t id) {
      ++generated;
      if (std::find(opt.stop.begin(), opt.stop.end(), id) == opt.stop.end()) emit(stream.push(id));
      cancelled();  // stops before the next token's forward
    });
    emit(stream.finish());
    if (text_out) *text_out = copy_string(text);
  });
}

}  // extern "C"
