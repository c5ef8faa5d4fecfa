#pragma once
// Python's repr(float) (what json.dumps writes for a finite float): the shortest digits that round-trip,
// positional for decimal exponents -5 < e < 16 ("0.0468", "1000000000000000.0"), else "1.5e-05" / "1e+16".
// Files meant to be byte-identical to ones Python wrote (bitsandbytes' quant_state JSON) need exactly this.
#include <string>

namespace pocketlora {

// Finite values only (InvalidArgument otherwise: json.dumps would write NaN/Infinity, which is not JSON).
std::string python_float_repr(double v);

}  // namespace pocketlora
