#pragma once
// The errors of the app's API that are not the library's (host/core/error.h): an HTTP status and the contract's
// code for it ("not_found", "conflict", "too_large", "unauthorized"). The library's own errors keep their codes
// and are mapped to a status by http_status_of (docs/APP.md, "Errors").
#include <stdexcept>
#include <string>

namespace pocketlora::serve {

class AppError : public std::runtime_error {
 public:
  AppError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string code_;
};

inline AppError not_found(const std::string& message) { return AppError(404, "not_found", message); }
inline AppError conflict(const std::string& message) { return AppError(409, "conflict", message); }
inline AppError too_large(const std::string& message) { return AppError(413, "too_large", message); }

}  // namespace pocketlora::serve
