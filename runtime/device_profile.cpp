#include "runtime/device_profile.h"

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "host/core/error.h"

namespace pocketlora::vk {

std::int64_t DeviceProfile::param(const std::string& key) const {
  auto it = params_.find(key);
  if (it == params_.end())
    throw InvalidArgument("device profile '" + name_ + "' has no parameter '" + key +
                             "' (add it to the \"default\" entry of runtime/device_profile_table.cpp)");
  return it->second;
}

bool DeviceProfile::has_quirk(const std::string& q) const {
  return std::find(quirks_.begin(), quirks_.end(), q) != quirks_.end();
}

void DeviceProfile::apply(const nlohmann::json& entry, const std::string& source) {
  if (entry.contains("params")) {
    for (auto& [k, v] : entry.at("params").items()) {
      if (!v.is_number_integer() && !v.is_boolean())
        throw FormatError(source + ": profile parameter '" + k + "' must be an integer");
      params_[k] = v.is_boolean() ? (v.get<bool>() ? 1 : 0) : v.get<std::int64_t>();
    }
  }
  if (entry.contains("quirks"))
    for (auto& q : entry.at("quirks")) quirks_.push_back(q.get<std::string>());
  sources_.push_back(source);
}

namespace {
bool matches(const nlohmann::json& m, const Capabilities& caps) {
  if (m.contains("vendor_id") && m.at("vendor_id").get<std::uint32_t>() != caps.vendor_id) return false;
  if (m.contains("device_id") && m.at("device_id").get<std::uint32_t>() != caps.device_id) return false;
  if (m.contains("device_type") && m.at("device_type").get<std::string>() != device_type_name(caps.type)) return false;
  if (m.contains("name_contains")) {
    // One substring, or a list of which any one must occur (a GPU family sold under several model numbers).
    const auto& n = m.at("name_contains");
    const auto names = n.is_array() ? n.get<std::vector<std::string>>() : std::vector<std::string>{n.get<std::string>()};
    if (std::none_of(names.begin(), names.end(),
                     [&](const std::string& s) { return caps.name.find(s) != std::string::npos; }))
      return false;
  }
  return true;
}
}  // namespace

DeviceProfile DeviceProfile::select(const Capabilities& caps, const std::filesystem::path& override_file) {
  DeviceProfile p;
  const auto& t = table();
  // Entries are applied from least to most specific: more match keys = more specific.
  std::vector<const nlohmann::json*> hits;
  for (auto& e : t)
    if (matches(e.at("match"), caps)) hits.push_back(&e);
  std::stable_sort(hits.begin(), hits.end(),
                   [](auto* a, auto* b) { return a->at("match").size() < b->at("match").size(); });
  for (auto* e : hits) {
    p.apply(*e, "table:" + e->at("name").get<std::string>());
    p.name_ = e->at("name").get<std::string>();
  }
  if (!override_file.empty()) {
    std::ifstream in(override_file);
    if (!in) throw IoError("cannot open device profile override '" + override_file.string() + "'");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError("device profile override '" + override_file.string() + "' is not valid JSON: " +
                               e.what());
    }
    if (!j.is_object())
      throw FormatError("device profile override '" + override_file.string() + "' must be a JSON object");
    const nlohmann::json params = j.contains("params") ? j.at("params") : nlohmann::json::object();
    for (auto it = params.begin(); it != params.end(); ++it)
      if (!p.params_.count(it.key()))
        throw FormatError("device profile override '" + override_file.string() + "': unknown parameter '" +
                                 it.key() + "'");
    p.apply(j, "file:" + override_file.string());
    p.name_ += "+override";
  }
  return p;
}

nlohmann::json DeviceProfile::to_json() const {
  return {{"name", name_}, {"sources", sources_}, {"params", params_}, {"quirks", quirks_}};
}

}  // namespace pocketlora::vk
