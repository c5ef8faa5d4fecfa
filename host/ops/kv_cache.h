#pragma once
// GPU attention over a KV cache (contract: host/core/op/kv_cache.h), f32.
#include "host/core/op/kv_cache.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {

void kv_cache_write(vk::Sequence& seq, const DeviceTensor& k, const DeviceTensor& v, const DeviceTensor& positions,
                    const DeviceTensor& k_cache, const DeviceTensor& v_cache);
// DeviceLimitError when attending over the whole cache would exceed the device's loop budget (loop_limit.h).
void kv_cache_attention(vk::Sequence& seq, const DeviceTensor& q, const DeviceTensor& k_cache,
                        const DeviceTensor& v_cache, const DeviceTensor& positions, const DeviceTensor& out,
                        float scale = 0.0f);

}  // namespace pocketlora::ops
