#pragma once
// The adapter store handle: host/adapters' AdapterStore (atomic on disk, writers flock'ed) behind a mutex, so one
// handle may be used from several threads.
#include <mutex>

#include "api/handle_registry.h"
#include "host/adapters/adapter_store.h"

struct pl_adapter_store : pocketlora::capi::Handle {
  explicit pl_adapter_store(std::filesystem::path root) : store(std::move(root)) {}
  std::mutex mu;
  pocketlora::AdapterStore store;
};
