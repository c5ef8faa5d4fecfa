#include "host/ops/storage_variant.h"

#include <string>

#include "host/core/error.h"

namespace pocketlora::ops {

StorageVariant storage_variant(const vk::Device& dev, const char* op, vk::ShaderId f32, vk::ShaderId f16,
                               std::vector<std::uint32_t> leading,
                               std::initializer_list<std::pair<const char*, const DeviceTensor*>> operands) {
  bool any_f16 = false;
  for (const auto& [name, t] : operands) {
    if (t->dtype != DType::F32 && t->dtype != DType::F16)
      throw ShapeError(std::string(op) + ": " + describe(name, *t) + " must be f32 or f16");
    any_f16 = any_f16 || t->dtype == DType::F16;
    leading.push_back(t->dtype == DType::F16 ? 1u : 0u);
  }
  if (any_f16 && !dev.caps().storage_16bit)
    throw DeviceLimitError(std::string(op) + ": f16 operands need storageBuffer16BitAccess, which '" + dev.caps().name +
                           "' lacks");
  return {any_f16 ? f16 : f32, std::move(leading)};
}

}  // namespace pocketlora::ops
