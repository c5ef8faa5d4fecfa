#pragma once
// Typed access to fields of JSON read from files (config.json, quant_state, adapter/dataset JSON). A field of
// the wrong type is a FormatError "ORIGIN: field 'NAME': expected integer, found string" -- never a bare
// nlohmann exception. A JSON null counts as absent (Hugging Face configs write nulls for unset fields).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace pocketlora::json_field {

// `origin` names the file (and record); `obj` must be a JSON object, else FormatError.
std::optional<std::int64_t> opt_int(const nlohmann::json& obj, std::string_view key, std::string_view origin);
std::optional<double> opt_number(const nlohmann::json& obj, std::string_view key, std::string_view origin);
std::optional<bool> opt_bool(const nlohmann::json& obj, std::string_view key, std::string_view origin);
std::optional<std::string> opt_string(const nlohmann::json& obj, std::string_view key, std::string_view origin);

// Required forms: a missing field is "ORIGIN: missing field 'NAME'".
std::int64_t integer(const nlohmann::json& obj, std::string_view key, std::string_view origin);
double number(const nlohmann::json& obj, std::string_view key, std::string_view origin);
std::string string(const nlohmann::json& obj, std::string_view key, std::string_view origin);

// Element `i` of an array field as an integer ("field 'shape[1]': expected integer, found string").
std::int64_t int_at(const nlohmann::json& arr, std::size_t i, std::string_view name, std::string_view origin);

}  // namespace pocketlora::json_field
