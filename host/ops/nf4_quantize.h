#pragma once
// GPU NF4 quantization, first level (bitsandbytes kQuantizeBlockwise, NF4, blocksize 64): codes + fp32 absmax.
// The double quantization of absmax (1/64 of the data) is done by the CPU reference on the downloaded absmax,
// which keeps it bit-identical to the CPU path.
#include <cstdint>
#include <vector>

#include "host/ops/device_tensor.h"

namespace pocketlora::ops {

// Records the kernel. codes: u8 [ceil(n/2)] (slice rounded to 4 bytes), absmax: f32 [ceil(n/64)],
// status: 2 x u32, must hold {0, 0xffffffff} before the dispatch (see quantize_nf4_blocking).
void nf4_quantize(vk::Sequence& seq, const DeviceTensor& x, const DeviceTensor& codes, const DeviceTensor& absmax,
                  const DeviceTensor& status);

struct Nf4FirstLevel {
  std::vector<std::uint8_t> codes;
  std::vector<float> absmax;
};

// Uploads nothing: `x` is already on the device (f32 or f16). Runs, downloads codes + absmax, and throws
// NumericError naming `name` and the first NaN/Inf element.
Nf4FirstLevel quantize_nf4_blocking(vk::Device& dev, vk::Arena& scratch, const DeviceTensor& x,
                                    const std::string& name);

}  // namespace pocketlora::ops
