#include "host/train/lora_config.h"

#include <algorithm>
#include <cmath>

#include "host/core/error.h"
#include "host/core/op/lora.h"

namespace pocketlora {

namespace {

constexpr const char* kShortNames[kLoraTargetCount] = {"q", "k", "v", "o", "gate", "up", "down"};
constexpr const char* kHfNames[kLoraTargetCount] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                    "gate_proj", "up_proj", "down_proj"};

std::string accepted_names() {
  std::string s = "all";
  for (const char* n : kShortNames) s += std::string(", ") + n;
  for (const char* n : kHfNames) s += std::string(", ") + n;
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

const char* lora_target_name(LoraTarget t) { return kShortNames[static_cast<int>(t)]; }
const char* lora_target_hf_name(LoraTarget t) { return kHfNames[static_cast<int>(t)]; }

std::vector<LoraTarget> parse_lora_targets(const std::string& s) {
  std::array<bool, kLoraTargetCount> chosen{};
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = std::min(s.find(',', start), s.size());
    const std::string name = trim(s.substr(start, comma - start));
    start = comma + 1;
    if (name == "all") {
      chosen.fill(true);
      continue;
    }
    bool known = false;
    for (int i = 0; i < kLoraTargetCount; ++i)
      if (name == kShortNames[i] || name == kHfNames[i]) chosen[static_cast<std::size_t>(i)] = known = true;
    if (!known)
      throw InvalidArgument("LoRA targets '" + s + "': unknown target '" + name + "' (accepted: " +
                            accepted_names() + ")");
  }
  std::vector<LoraTarget> out;
  for (LoraTarget t : kAllLoraTargets)
    if (chosen[static_cast<std::size_t>(t)]) out.push_back(t);
  return out;
}

float LoraConfig::scale() const { return lora_scale(alpha, rank, rslora); }

bool LoraConfig::adapts(LoraTarget t) const { return std::find(targets.begin(), targets.end(), t) != targets.end(); }

void LoraConfig::validate() const {
  if (rank < 1) throw InvalidArgument("LoRA rank " + std::to_string(rank) + " must be at least 1");
  if (!std::isfinite(alpha) || alpha <= 0.0f)
    throw InvalidArgument("LoRA alpha " + std::to_string(alpha) + " must be finite and positive");
  if (!(dropout >= 0.0f && dropout < 1.0f))
    throw InvalidArgument("LoRA dropout " + std::to_string(dropout) + " must be in [0, 1)");
  if (targets.empty()) throw InvalidArgument("LoRA targets: none chosen (accepted: " + accepted_names() + ")");
  for (std::size_t i = 0; i < targets.size(); ++i)
    for (std::size_t j = i + 1; j < targets.size(); ++j)
      if (targets[i] == targets[j])
        throw InvalidArgument(std::string("LoRA targets: '") + lora_target_name(targets[i]) + "' appears twice");
}

nlohmann::json lora_config_json(const LoraConfig& c) {
  std::vector<std::string> targets;
  for (LoraTarget t : c.targets) targets.push_back(lora_target_name(t));
  return {{"rank", c.rank}, {"alpha", c.alpha}, {"dropout", c.dropout}, {"rslora", c.rslora}, {"targets", targets}};
}

}  // namespace pocketlora
