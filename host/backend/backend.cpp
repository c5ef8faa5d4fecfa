#include "host/backend/backend.h"

#include "host/core/error.h"

namespace pocketlora {

const char* backend_kind_name(BackendKind k) { return k == BackendKind::Cpu ? "cpu" : "vulkan"; }

BackendKind parse_backend_kind(const std::string& s) {
  if (s == "cpu") return BackendKind::Cpu;
  if (s == "vulkan") return BackendKind::Vulkan;
  throw InvalidArgument("unknown backend '" + s + "' (expected cpu or vulkan)");
}

BTensor Backend::upload(const Tensor& t, Lifetime life, const std::string& name) {
  BTensor b = alloc(t.shape(), t.dtype(), life, name);
  write(b, t);
  return b;
}

}  // namespace pocketlora
