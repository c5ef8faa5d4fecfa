#pragma once
// SPIR-V compiled from shaders/**/*.comp at build time (cmake/Shaders.cmake) and embedded in the library. Each
// shader has a generated identifier in <shaders/shader_ids.h> (pocketlora::shaders::nn_matmul_f32 for
// shaders/nn/matmul_f32.comp): ops name kernels by identifier, so a misspelt or deleted kernel fails the build,
// not the first run.
#include <compare>
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

// An embedded shader: its index in kEmbeddedShaders and its name. Only the generated header constructs these
// (the constructor is explicit, so a string literal cannot stand in for one).
class ShaderId {
 public:
  constexpr explicit ShaderId(unsigned index, const char* name) : index_(index), name_(name) {}
  constexpr unsigned index() const { return index_; }
  constexpr const char* name() const { return name_; }
  friend constexpr bool operator==(const ShaderId& a, const ShaderId& b) { return a.index_ == b.index_; }
  friend constexpr auto operator<=>(const ShaderId& a, const ShaderId& b) { return a.index_ <=> b.index_; }

 private:
  unsigned index_;
  const char* name_;
};

std::span<const std::uint32_t> shader_spirv(ShaderId id);
std::vector<std::string_view> shader_names();

}  // namespace pocketlora::vk
