#pragma once
// Sizes as people write them: "1.5G", "800M", "64K" (powers of 1024; "GiB"/"MiB"/"KiB" too) or a plain byte
// count — `--max-memory`, and the same field of a JSON job config.
#include <cstdint>
#include <string>

namespace pocketlora {

// InvalidArgument naming `what` (e.g. "--max-memory") when `s` is not a positive size.
std::uint64_t parse_byte_size(const std::string& s, const std::string& what);

}  // namespace pocketlora
