#pragma once
// What LoRA trains: rank, alpha, dropout, rsLoRA and which of the seven linears of each Llama layer get an
// adapter (DESIGN.md §3, PEFT semantics). Validated before any work starts.
#include <array>
#include <nlohmann/json.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace pocketlora {

// The seven linears of a Llama layer, in the order PEFT and the trainer walk them.
enum class LoraTarget { Q, K, V, O, Gate, Up, Down };
constexpr int kLoraTargetCount = 7;
constexpr std::array<LoraTarget, kLoraTargetCount> kAllLoraTargets = {
    LoraTarget::Q, LoraTarget::K, LoraTarget::V, LoraTarget::O, LoraTarget::Gate, LoraTarget::Up, LoraTarget::Down};

const char* lora_target_name(LoraTarget t);     // "q", "k", "v", "o", "gate", "up", "down"
const char* lora_target_hf_name(LoraTarget t);  // "q_proj", ..., "down_proj" (PEFT target_modules)

// "q,k,v,o,gate,up,down" in any order and subset, HF names ("q_proj", ...), or "all"; spaces around names are
// ignored. Returns the targets in canonical order without duplicates. An empty list or an unknown name is
// InvalidArgument naming the value and the accepted names.
std::vector<LoraTarget> parse_lora_targets(const std::string& s);

struct LoraConfig {
  std::int64_t rank = 8;
  float alpha = 16.0f;
  float dropout = 0.0f;  // on the LoRA input only, p in [0, 1)
  bool rslora = false;   // scale alpha / sqrt(rank) instead of alpha / rank
  std::vector<LoraTarget> targets = {kAllLoraTargets.begin(), kAllLoraTargets.end()};

  float scale() const;
  bool adapts(LoraTarget t) const;
  // InvalidArgument naming the field, the value and what is accepted: rank < 1, alpha not finite and positive,
  // dropout outside [0, 1), no targets or a repeated one.
  void validate() const;
};

// {"rank", "alpha", "dropout", "rslora", "targets": ["q", ...]}: how a checkpoint's config and a queued job record
// the adapter's shape.
nlohmann::json lora_config_json(const LoraConfig& c);

}  // namespace pocketlora
