#pragma once
// SHA-256 (FIPS 180-4): pins byte tables in tests by the digest a reference publishes, and fingerprints base
// models and checkpoint files in the trainer. Streaming, so large inputs are hashed without a copy.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace pocketlora {

class Sha256 {
 public:
  Sha256();
  void update(std::span<const std::uint8_t> data);
  void update(std::string_view text) {
    update({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  }
  // Lower-case hex digest; the object is spent afterwards (further calls are an InternalError).
  std::string hex_digest();

 private:
  void block(const std::uint8_t* p);
  std::array<std::uint32_t, 8> h_;
  std::array<std::uint8_t, 64> buf_{};
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;  // bytes
  bool done_ = false;
};

// Lower-case hex digest of `data`.
std::string sha256_hex(std::span<const std::uint8_t> data);

// Lower-case hex digest of the file at `path`, read in 1 MiB pieces; IoError if it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace pocketlora
