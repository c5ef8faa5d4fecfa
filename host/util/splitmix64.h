#pragma once
// splitmix64 (Steele, Lea, Flood 2014): a tiny seeded generator whose output is identical on every platform,
// used wherever shuffles or test data must be reproducible across compilers and standard libraries.
#include <cstdint>

namespace pocketlora {

inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace pocketlora
