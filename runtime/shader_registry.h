#pragma once
// SPIR-V compiled from shaders/**/*.comp at build time (cmake/Shaders.cmake) and embedded in the library.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace pocketlora::vk {

struct EmbeddedShader {
  const char* name;  // path under shaders/ without ".comp", e.g. "nn/matmul_f32"
  const unsigned int* words;
  unsigned long word_count;
};

extern const EmbeddedShader kEmbeddedShaders[];
extern const unsigned long kEmbeddedShaderCount;

// Throws InternalError listing the available shaders when `name` is unknown.
std::span<const std::uint32_t> shader_spirv(std::string_view name);
std::vector<std::string_view> shader_names();

}  // namespace pocketlora::vk
