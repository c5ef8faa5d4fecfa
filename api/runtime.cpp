// pl_runtime: which backend (and Vulkan device) the models made from it use.
#include "api/runtime.h"

#include "host/core/error.h"

using namespace pocketlora;
using namespace pocketlora::capi;

extern "C" {

pl_status pl_runtime_open(pl_backend backend, int device_index, pl_runtime** out) {
  return guarded("pl_runtime_open", [&] {
    require(out, "pl_runtime_open", "out");
    *out = nullptr;
    auto rt = std::make_shared<pl_runtime>();
    switch (backend) {
      case PL_BACKEND_AUTO: rt->kind = resolve_backend_kind("auto"); break;
      case PL_BACKEND_CPU: rt->kind = BackendKind::Cpu; break;
      case PL_BACKEND_VULKAN: rt->kind = BackendKind::Vulkan; break;
      default:
        throw InvalidArgument(fmt::format("pl_runtime_open: backend {} is not PL_BACKEND_AUTO, _CPU or _VULKAN",
                                          static_cast<int>(backend)));
    }
    if (device_index < -1)
      throw InvalidArgument(fmt::format("pl_runtime_open: device_index {}: expected -1 (default) or >= 0", device_index));
    if (device_index >= 0) {
      if (rt->kind == BackendKind::Cpu)
        throw InvalidArgument(fmt::format("pl_runtime_open: device_index {} given for the CPU backend", device_index));
      rt->device = device_index;
    }
    // Made once here so a missing device is an error of this call, not of the first model load.
    rt->description = make_backend(rt->kind, rt->device)->describe();
    register_handle(rt);
    *out = rt.get();
  });
}

pl_status pl_runtime_describe(pl_runtime* rt, char** out) {
  return guarded("pl_runtime_describe", [&] {
    auto r = get<pl_runtime>(rt, "pl_runtime_describe", "pl_runtime");
    require(out, "pl_runtime_describe", "out");
    *out = copy_string(r->description);
  });
}

pl_status pl_runtime_backend(pl_runtime* rt, pl_backend* out) {
  return guarded("pl_runtime_backend", [&] {
    auto r = get<pl_runtime>(rt, "pl_runtime_backend", "pl_runtime");
    require(out, "pl_runtime_backend", "out");
    *out = r->kind == BackendKind::Cpu ? PL_BACKEND_CPU : PL_BACKEND_VULKAN;
  });
}

pl_status pl_runtime_close(pl_runtime* rt) {
  return guarded("pl_runtime_close", [&] { release<pl_runtime>(rt, "pl_runtime_close", "pl_runtime"); });
}

}  // extern "C"
