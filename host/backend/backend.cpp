#include "host/backend/backend.h"

#include "host/core/error.h"

namespace pocketlora {

const char* backend_kind_name(BackendKind k) { return k == BackendKind::Cpu ? "cpu" : "vulkan"; }

BackendKind parse_backend_kind(const std::string& s) {
  if (s == "cpu") return BackendKind::Cpu;
  if (s == "vulkan") return BackendKind::Vulkan;
  throw InvalidArgument("unknown backend '" + s + "' (expected cpu or vulkan)");
}

Shape view_rows_shape(const std::string& name, const Shape& shape, std::int64_t row0, std::int64_t rows) {
  if (shape.empty() || row0 < 0 || rows < 0 || row0 > shape[0] - rows)
    throw ShapeError("view_rows: rows [" + std::to_string(row0) + ", " + std::to_string(row0 + rows) + ") of '" +
                     name + "' " + shape_str(shape) + " leave its leading dimension");
  Shape s = shape;
  s[0] = rows;
  return s;
}

BTensor Backend::upload(const Tensor& t, Lifetime life, const std::string& name) {
  BTensor b = alloc(t.shape(), t.dtype(), life, name);
  write(b, t);
  return b;
}

}  // namespace pocketlora
