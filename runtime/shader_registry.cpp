#include "runtime/shader_registry.h"

#include <stdexcept>

#include "host/util/error.h"
#include <string>

namespace pocketlora::vk {

std::span<const std::uint32_t> shader_spirv(std::string_view name) {
  for (unsigned long i = 0; i < kEmbeddedShaderCount; ++i)
    if (name == kEmbeddedShaders[i].name)
      return {reinterpret_cast<const std::uint32_t*>(kEmbeddedShaders[i].words), kEmbeddedShaders[i].word_count};
  std::string known;
  for (auto n : shader_names()) known += std::string(known.empty() ? "" : ", ") + std::string(n);
  throw InternalError("no embedded shader named '" + std::string(name) + "' (built: " + known + ")");
}

std::vector<std::string_view> shader_names() {
  std::vector<std::string_view> v;
  for (unsigned long i = 0; i < kEmbeddedShaderCount; ++i) v.emplace_back(kEmbeddedShaders[i].name);
  return v;
}

}  // namespace pocketlora::vk
