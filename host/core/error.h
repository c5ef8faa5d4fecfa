#pragma once
// The one error hierarchy of the library. Every message names the thing it is about (file, tensor, op) and what
// was expected vs found; every error carries a machine-readable code, which the C API returns at its boundary
// (exceptions never cross it). The Vulkan runtime's errors (runtime/error.h) derive from the same base, so a
// caller handles "out of memory" or "device lost" the same way whichever layer raised it.
#include <stdexcept>
#include <string>

namespace pocketlora {

enum class ErrorCode : int {
  InvalidInput = 1,  // a caller-supplied value out of range or inconsistent (flag, option, index)
  Format = 2,        // a file or buffer whose contents violate its format
  Io = 3,            // the OS refused a read/write (missing file, permission, disk full)
  ShapeMismatch = 4,         // tensor shapes/dtypes that do not fit the op or model
  Numeric = 5,       // NaN/Inf in weights, loss or gradients
  DeviceLimit = 6,   // the work exceeds a limit of this device (binding size, loop cap, workgroup count)
  DeviceLost = 7,    // the GPU was lost (driver reset, hang): state on it is gone
  OutOfMemory = 8,   // device or host memory exhausted
  NoDevice = 9,      // no Vulkan loader/driver/device usable
  Backend = 10,      // any other failure reported by the GPU API
  Cancelled = 11,    // the caller asked to stop
  Internal = 12,     // a broken invariant inside the library (a bug)
};

// Stable lower-case name of a code ("invalid_input", "device_lost", ...), as the C API and JSON outputs spell it.
const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& what) : std::runtime_error(what), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// One subclass per code that callers catch by type; each fixes its code.
template <ErrorCode C>
class CodedError : public Error {
 public:
  static constexpr ErrorCode kCode = C;
  explicit CodedError(const std::string& what) : Error(C, what) {}
};

using InvalidArgument = CodedError<ErrorCode::InvalidInput>;
using FormatError = CodedError<ErrorCode::Format>;
using IoError = CodedError<ErrorCode::Io>;
using ShapeError = CodedError<ErrorCode::ShapeMismatch>;
using NumericError = CodedError<ErrorCode::Numeric>;
using DeviceLimitError = CodedError<ErrorCode::DeviceLimit>;
using CancelledError = CodedError<ErrorCode::Cancelled>;
// A plan or request that does not fit the memory it is given (the Vulkan allocator's failures are vk::OutOfMemory).
using OutOfMemoryError = CodedError<ErrorCode::OutOfMemory>;
using InternalError = CodedError<ErrorCode::Internal>;

inline const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidInput: return "invalid_input";
    case ErrorCode::Format: return "format";
    case ErrorCode::Io: return "io";
    case ErrorCode::ShapeMismatch: return "shape";
    case ErrorCode::Numeric: return "numeric";
    case ErrorCode::DeviceLimit: return "device_limit";
    case ErrorCode::DeviceLost: return "device_lost";
    case ErrorCode::OutOfMemory: return "out_of_memory";
    case ErrorCode::NoDevice: return "no_device";
    case ErrorCode::Backend: return "backend";
    case ErrorCode::Cancelled: return "cancelled";
    case ErrorCode::Internal: return "internal";
  }
  return "unknown";
}

}  // namespace pocketlora
