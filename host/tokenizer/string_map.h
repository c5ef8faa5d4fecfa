#pragma once
// Hash map keyed by std::string that can be probed with a std::string_view without allocating (C++20
// heterogeneous lookup); the tokenizers probe it once per candidate merge.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pocketlora {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

}  // namespace pocketlora
