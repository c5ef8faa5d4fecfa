#pragma once
// SHA-256 (FIPS 180-4) for pinning byte tables in tests by the digest a reference publishes.
#include <cstdint>
#include <span>
#include <string>

namespace pocketlora::test {

// Lower-case hex digest of `data`.
std::string sha256_hex(std::span<const std::uint8_t> data);

}  // namespace pocketlora::test
