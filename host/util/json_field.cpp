#include "host/util/json_field.h"

#include "host/core/error.h"

namespace pocketlora::json_field {

namespace {

[[noreturn]] void wrong_type(std::string_view origin, std::string_view name, const char* want, const nlohmann::json& v) {
  throw FormatError(std::string(origin) + ": field '" + std::string(name) + "': expected " + want + ", found " +
                    v.type_name());
}

const nlohmann::json* find(const nlohmann::json& obj, std::string_view key, std::string_view origin) {
  if (!obj.is_object())
    throw FormatError(std::string(origin) + ": expected a JSON object holding '" + std::string(key) + "', found " +
                      obj.type_name());
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::int64_t as_int(const nlohmann::json& v, std::string_view name, std::string_view origin) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX))
      throw FormatError(std::string(origin) + ": field '" + std::string(name) + "': " + std::to_string(u) +
                        " does not fit in int64");
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<std::int64_t>();
  wrong_type(origin, name, "integer", v);
}

template <typename T>
T required(const std::optional<T>& v, std::string_view key, std::string_view origin) {
  if (!v) throw FormatError(std::string(origin) + ": missing field '" + std::string(key) + "'");
  return *v;
}

}  // namespace

std::optional<std::int64_t> opt_int(const nlohmann::json& obj, std::string_view key, std::string_view origin) {
  const auto* v = find(obj, key, origin);
  if (!v) return std::nullopt;
  return as_int(*v, key, origin);
}

std::optional<double> opt_number(const nlohmann::json& obj, std::string_view key, std::string_view origin) {
  const auto* v = find(obj, key, origin);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(origin, key, "number", *v);
  return v->get<double>();
}

std::optional<bool> opt_bool(const nlohmann::json& obj, std::string_view key, std::string_view origin) {
  const auto* v = find(obj, key, origin);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong_type(origin, key, "boolean", *v);
  return v->get<bool>();
}

std::optional<std::string> opt_string(const nlohmann::json& obj, std::string_view key, std::string_view origin) {
  const auto* v = find(obj, key, origin);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong_type(origin, key, "string", *v);
  return v->get<std::string>();
}

std::int64_t integer(const nlohmann::json& obj, std::string_view key, std::string_view origin) {
  return required(opt_int(obj, key, origin), key, origin);
}
double number(const nlohmann::json& obj, std::string_view key, std::string_view origin) {
  return required(opt_number(obj, key, origin), key, origin);
}
std::string string(const nlohmann::json& obj, std::string_view key, std::string_view origin) {
  return required(opt_string(obj, key, origin), key, origin);
}

std::int64_t int_at(const nlohmann::json& arr, std::size_t i, std::string_view name, std::string_view origin) {
  const std::string field = std::string(name) + "[" + std::to_string(i) + "]";
  if (!arr.is_array() || i >= arr.size())
    throw FormatError(std::string(origin) + ": field '" + field + "': missing");
  return as_int(arr[i], field, origin);
}

}  // namespace pocketlora::json_field
