#pragma once
// Library errors. Every message names the thing it is about (file, tensor, op) and what was expected vs found;
// exceptions stay inside the library and become error codes + message at the C API boundary.
#include <stdexcept>
#include <string>

namespace pocketlora {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file or buffer whose contents violate its format: truncated, out-of-range offset, bad magic, bad JSON...
class FormatError : public Error {
 public:
  using Error::Error;
};

// Reading or writing a file failed at the OS level (missing, permission, disk full).
class IoError : public Error {
 public:
  using Error::Error;
};

// Tensor shapes/dtypes that do not fit the op or model they are given to.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A caller-supplied value that is out of range or inconsistent (flag, option, index).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// Numerical failure the caller must handle (NaN/Inf in weights, loss or gradients).
class NumericError : public Error {
 public:
  using Error::Error;
};

}  // namespace pocketlora
