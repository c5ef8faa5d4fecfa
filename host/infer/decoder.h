#pragma once
// Inference over the Backend interface (both backends, the same code): the uploaded base model, any number of LoRA
// adapters resident at once, and a KV cache. Each sequence chooses which adapters apply and at what scale:
//   y = W x + Σ_u scale_u · s_u · B_u (A_u x)      s_u = alpha / r (rsLoRA: alpha / sqrt(r)), PEFT semantics
// for every adapted linear, or none (the base model). The forward is the one of host/model/llama_forward.h, with
// hooks for the adapters and for attention over the cache (host/core/op/kv_cache.h).
//
// Programs are recorded once per (token count, logit rows) and replayed: the host writes the token ids and their
// positions before each run, so the decode step (one token) is one submit per token. The decoder owns the
// backend's step state: its programs and activations are Step tensors, released (free_step) when the adapter
// selection changes or too many prompt lengths have been recorded; nothing else may call free_step() meanwhile.
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/llama_forward.h"
#include "host/train/lora_adapter.h"

namespace pocketlora {

// One adapter a sequence applies: the index add_adapter returned, and a factor on the adapter's own PEFT scale.
struct AdapterUse {
  std::size_t adapter = 0;
  float scale = 1.0f;
  bool operator==(const AdapterUse&) const = default;
};

class Decoder {
 public:
  // `context`: the most positions a sequence may hold (the KV cache's rows); 0 takes the model's max_seq_len.
  Decoder(Backend& be, BackendLlama base, std::int64_t context = 0);

  // Uploads the adapter's A and B (Weights lifetime) and returns its index. ShapeError naming the module when a
  // tensor does not fit the base model's linear.
  std::size_t add_adapter(const LoraAdapter& adapter, const std::string& name);
  std::size_t adapter_count() const { return adapters_.size(); }
  const std::string& adapter_name(std::size_t i) const { return adapters_.at(i).name; }

  // Starts a new sequence at position 0 with these adapters (none: the base model). InvalidArgument for an
  // unknown adapter index or a non-finite scale.
  void start(const std::vector<AdapterUse>& uses = {});
  // Runs `tokens` at positions position() .. position() + T - 1, appending their keys and values to the cache.
  // Returns logits f32 [T, vocab] when all_logits, else [1, vocab] for the last token. InvalidArgument when the
  // sequence would pass the context length (naming it) or a token id is outside the vocabulary.
  Tensor forward(std::span<const std::int32_t> tokens, bool all_logits = false);

  std::int64_t position() const { return position_; }
  std::int64_t context() const { return context_; }
  const LlamaConfig& config() const { return base_.config; }
  Backend& backend() { return be_; }

 private:
  struct ResidentModule {
    BTensor a, b;        // A [r, in], B [out, r]; id 0 where the linear is not adapted
    float scale = 1.0f;  // this module's PEFT alpha / r (or alpha / sqrt(r)), per-module patterns applied
  };
  struct ResidentAdapter {
    std::string name;
    std::vector<std::array<ResidentModule, kLoraTargetCount>> modules;  // [layer][linear]
  };
  struct Recorded {
    Backend::Program program = 0;
    BTensor ids, positions, logits;
  };
  const Recorded& recorded(std::int64_t T, std::int64_t rows);
  void release_programs();

  Backend& be_;
  BackendLlama base_;
  std::int64_t context_ = 0;
  BTensor rope_;                                   // rope table [context, head_dim / 2, 2]
  std::vector<std::pair<BTensor, BTensor>> cache_;  // per layer: k, v [context, n_kv_heads, head_dim]
  std::vector<ResidentAdapter> adapters_;
  std::vector<AdapterUse> uses_;
  std::map<std::pair<std::int64_t, std::int64_t>, Recorded> programs_;  // by (tokens, logit rows)
  std::int64_t position_ = 0;
};

}  // namespace pocketlora
