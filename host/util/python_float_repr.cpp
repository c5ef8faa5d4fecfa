#include "host/util/python_float_repr.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "host/core/error.h"

namespace pocketlora {

std::string python_float_repr(double v) {
  if (!std::isfinite(v)) throw InvalidArgument("python_float_repr: " + std::to_string(v) + " is not finite");
  // Shortest round-trip digits (the same digits Python's repr picks), then Python's layout rules.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string sci(buf, res.ptr);  // "-4.688508063554764e-02"
  const std::size_t e_pos = sci.find('e');
  std::string out;
  if (sci[0] == '-') out.push_back('-');
  std::string digits;
  for (std::size_t i = out.size(); i < e_pos; ++i)
    if (sci[i] != '.') digits += sci[i];
  const int exponent = std::atoi(sci.c_str() + e_pos + 1);
  const int decpt = exponent + 1;  // digits d1 d2 ... are 0.d1d2... * 10^decpt
  const int nd = static_cast<int>(digits.size());
  // Built by append: GCC 12 -O3 reports a false -Wrestrict on some std::string operator+ chains.
  if (decpt <= -4 || decpt > 16) {
    out.append(digits, 0, 1);
    if (nd > 1) out.append(".").append(digits, 1);
    const int a = std::abs(exponent);
    out.append(exponent < 0 ? "e-" : "e+");
    if (a < 10) out.push_back('0');
    out.append(std::to_string(a));
  } else if (decpt <= 0) {
    out.append("0.").append(static_cast<std::size_t>(-decpt), '0').append(digits);
  } else if (decpt >= nd) {
    out.append(digits).append(static_cast<std::size_t>(decpt - nd), '0').append(".0");
  } else {
    out.append(digits, 0, static_cast<std::size_t>(decpt)).append(".").append(digits, static_cast<std::size_t>(decpt));
  }
  return out;
}

}  // namespace pocketlora
