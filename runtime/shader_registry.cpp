#include "runtime/shader_registry.h"

#include <string>

#include "host/core/error.h"

namespace pocketlora::vk {

std::span<const std::uint32_t> shader_spirv(ShaderId id) {
  // Ids are generated from the same list as the table; a mismatch means a stale generated header.
  if (id.index() >= kEmbeddedShaderCount || std::string_view(kEmbeddedShaders[id.index()].name) != id.name())
    throw InternalError(std::string("shader id '") + id.name() + "' does not match the embedded shader table");
  const auto& s = kEmbeddedShaders[id.index()];
  return {reinterpret_cast<const std::uint32_t*>(s.words), s.word_count};
}

std::vector<std::string_view> shader_names() {
  std::vector<std::string_view> v;
  for (unsigned long i = 0; i < kEmbeddedShaderCount; ++i) v.emplace_back(kEmbeddedShaders[i].name);
  return v;
}

}  // namespace pocketlora::vk
