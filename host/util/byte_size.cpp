#include "host/util/byte_size.h"

#include <cmath>
#include <stdexcept>

#include "host/core/error.h"

namespace pocketlora {

std::uint64_t parse_byte_size(const std::string& s, const std::string& what) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::logic_error&) {
    used = 0;
  }
  const std::string unit = s.substr(used);
  double mul = -1;
  if (used > 0 && unit.empty()) mul = 1;
  else if (used > 0 && (unit == "K" || unit == "KiB" || unit == "k")) mul = 1024.0;
  else if (used > 0 && (unit == "M" || unit == "MiB")) mul = 1024.0 * 1024;
  else if (used > 0 && (unit == "G" || unit == "GiB")) mul = 1024.0 * 1024 * 1024;
  if (mul < 0 || !(v > 0) || !std::isfinite(v * mul) || v * mul >= 1.8e19)
    throw InvalidArgument(what + " '" + s + "': expected a size such as 1.5G, 800M or a byte count");
  return static_cast<std::uint64_t>(v * mul);
}

}  // namespace pocketlora
