#pragma once
// What every C API function stands on: the live handles of each type, the per-thread last error, and the guard
// that turns every exception into a pl_status at the boundary (nothing C++ leaves a pl_* function).
#include <fmt/format.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "api/pocketlora.h"

namespace pocketlora::capi {

// Base of every handle struct (pl_runtime, pl_model, ...): the registry owns them through shared_ptr, and a call
// holds its own reference while it runs, so releasing a handle on one thread never frees it under another.
struct Handle {
  virtual ~Handle() = default;
};

// An API-level failure without an ErrorCode (PL_ERR_INVALID_HANDLE, PL_ERR_BAD_STATE), or one that carries the
// status of an earlier error (a failed job's error returned by pl_train_job_wait).
class ApiError : public std::runtime_error {
 public:
  ApiError(pl_status status, const std::string& what) : std::runtime_error(what), status_(status) {}
  pl_status status() const { return status_; }

 private:
  pl_status status_;
};

void register_handle(std::shared_ptr<Handle> h);
std::shared_ptr<Handle> find_handle(const void* p);
// Removes the handle from the live set; null when it was not live (NULL, already released).
std::shared_ptr<Handle> unregister_handle(const void* p);

// The live handle `p` as a T, else ApiError(PL_ERR_INVALID_HANDLE) naming the function and the type.
template <typename T>
std::shared_ptr<T> get(const void* p, const char* fn, const char* type) {
  auto h = std::dynamic_pointer_cast<T>(find_handle(p));
  if (!h)
    throw ApiError(PL_ERR_INVALID_HANDLE,
                   p ? fmt::format("{}: not a live {} handle (released, or of another type)", fn, type)
                     : fmt::format("{}: the {} handle is NULL", fn, type));
  return h;
}

// Removes the live handle `p` of type T (its last reference goes when the caller's copy does).
template <typename T>
std::shared_ptr<T> release(const void* p, const char* fn, const char* type) {
  get<T>(p, fn, type);
  auto h = std::dynamic_pointer_cast<T>(unregister_handle(p));
  if (!h) throw ApiError(PL_ERR_INVALID_HANDLE, fmt::format("{}: the {} handle was released concurrently", fn, type));
  return h;
}

// A required pointer argument (a string, an out-pointer): PL_ERR_INVALID_INPUT naming it when NULL.
void require(const void* p, const char* fn, const char* arg);

// A string the caller frees with pl_free_string.
char* copy_string(const std::string& s);

// Records `message` as this thread's last error and returns `status`.
pl_status fail(pl_status status, const std::string& message);

// Runs `f`, mapping every exception to its pl_status and this thread's last error.
pl_status guarded(const char* fn, const std::function<void()>& f) noexcept;

}  // namespace pocketlora::capi
