#include "api/handle_registry.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <new>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "host/core/error.h"

namespace pocketlora::capi {
namespace {

// The C enum mirrors ErrorCode number for number: a status is the code, cast.
static_assert(PL_ERR_INVALID_INPUT == static_cast<int>(ErrorCode::InvalidInput));
static_assert(PL_ERR_FORMAT == static_cast<int>(ErrorCode::Format));
static_assert(PL_ERR_IO == static_cast<int>(ErrorCode::Io));
static_assert(PL_ERR_SHAPE == static_cast<int>(ErrorCode::ShapeMismatch));
static_assert(PL_ERR_NUMERIC == static_cast<int>(ErrorCode::Numeric));
static_assert(PL_ERR_DEVICE_LIMIT == static_cast<int>(ErrorCode::DeviceLimit));
static_assert(PL_ERR_DEVICE_LOST == static_cast<int>(ErrorCode::DeviceLost));
static_assert(PL_ERR_OUT_OF_MEMORY == static_cast<int>(ErrorCode::OutOfMemory));
static_assert(PL_ERR_NO_DEVICE == static_cast<int>(ErrorCode::NoDevice));
static_assert(PL_ERR_BACKEND == static_cast<int>(ErrorCode::Backend));
static_assert(PL_ERR_CANCELLED == static_cast<int>(ErrorCode::Cancelled));
static_assert(PL_ERR_INTERNAL == static_cast<int>(ErrorCode::Internal));

struct Registry {
  std::mutex mu;
  std::unordered_map<const void*, std::shared_ptr<Handle>> live;
};

// Never destroyed: a handle the app never released must not be torn down by static destructors at exit while its
// worker thread may still run (the OS reclaims it). Leak checkers see it as reachable.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

thread_local std::string t_last_error;

}  // namespace

void register_handle(std::shared_ptr<Handle> h) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  const void* key = h.get();
  r.live[key] = std::move(h);
}

std::shared_ptr<Handle> find_handle(const void* p) {
  if (!p) return nullptr;
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto it = r.live.find(p);
  return it == r.live.end() ? nullptr : it->second;
}

std::shared_ptr<Handle> unregister_handle(const void* p) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto it = r.live.find(p);
  if (it == r.live.end()) return nullptr;
  auto h = std::move(it->second);
  r.live.erase(it);
  return h;
}

void require(const void* p, const char* fn, const char* arg) {
  if (!p) throw ApiError(PL_ERR_INVALID_INPUT, fmt::format("{}: {} is NULL", fn, arg));
}

char* copy_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (!out) throw std::bad_alloc();
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

pl_status fail(pl_status status, const std::string& message) {
  try {
    t_last_error = message;
  } catch (...) {  // no memory for the message: the status still says what happened
  }
  return status;
}

pl_status guarded(const char* fn, const std::function<void()>& f) noexcept {
  try {
    f();
    return PL_OK;
  } catch (const ApiError& e) {
    return fail(e.status(), e.what());
  } catch (const Error& e) {
    return fail(static_cast<pl_status>(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return fail(PL_ERR_OUT_OF_MEMORY, fmt::format("{}: host memory exhausted", fn));
  } catch (const std::filesystem::filesystem_error& e) {
    return fail(PL_ERR_IO, e.what());
  } catch (const nlohmann::json::exception& e) {
    return fail(PL_ERR_FORMAT, fmt::format("{}: {}", fn, e.what()));
  } catch (const std::exception& e) {
    return fail(PL_ERR_INTERNAL, fmt::format("{}: {}", fn, e.what()));
  } catch (...) {
    return fail(PL_ERR_INTERNAL, fmt::format("{}: an unknown exception", fn));
  }
}

}  // namespace pocketlora::capi

using namespace pocketlora::capi;

extern "C" {

int pl_version(void) { return PL_API_VERSION; }

const char* pl_status_name(pl_status status) {
  switch (status) {
    case PL_OK: return "ok";
    case PL_ERR_INVALID_HANDLE: return "invalid_handle";
    case PL_ERR_BAD_STATE: return "bad_state";
    default: break;
  }
  if (status >= PL_ERR_INVALID_INPUT && status <= PL_ERR_INTERNAL)
    return pocketlora::error_code_name(static_cast<pocketlora::ErrorCode>(status));
  return "unknown";
}

const char* pl_last_error(void) { return t_last_error.c_str(); }

void pl_free_string(char* s) { std::free(s); }

}  // extern "C"
