#pragma once
// The runtime handle: a backend choice, checked once at open. Models make their own backend instance from it
// (a decoder owns its backend's step state, so two models cannot share one).
#include <optional>
#include <string>

#include "api/handle_registry.h"
#include "host/backend/backend.h"

struct pl_runtime : pocketlora::capi::Handle {
  pocketlora::BackendKind kind = pocketlora::BackendKind::Cpu;
  std::optional<int> device;
  std::string description;
};
