#pragma once
// Per-vendor tuning as data. The table (runtime/device_profile_table.cpp) is JSON: a "default" profile that
// defines every parameter, and vendor/device entries that override some of them. A user JSON file
// (POCKETLORA_PROFILE or DeviceOptions::profile_path) can override any value. Op code asks for parameters by
// name; nowhere else does code branch on the vendor.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/capabilities.h"

namespace pocketlora::vk {

class DeviceProfile {
 public:
  const std::string& name() const { return name_; }
  // Integer tuning parameter (e.g. "matmul.tile_m"); throws naming the key when the table lacks it.
  std::int64_t param(const std::string& key) const;
  std::uint32_t u32(const std::string& key) const { return static_cast<std::uint32_t>(param(key)); }
  bool flag(const std::string& key) const { return param(key) != 0; }
  const std::vector<std::string>& quirks() const { return quirks_; }
  bool has_quirk(const std::string& q) const;
  const std::map<std::string, std::int64_t>& params() const { return params_; }
  nlohmann::json to_json() const;

  // Resolves the profile for a device: default <- matching vendor entry <- matching device entry <- override.
  static DeviceProfile select(const Capabilities& caps, const std::filesystem::path& override_file = {});
  static const nlohmann::json& table();

 private:
  void apply(const nlohmann::json& entry, const std::string& source);
  std::string name_ = "default";
  std::vector<std::string> sources_;
  std::map<std::string, std::int64_t> params_;
  std::vector<std::string> quirks_;
};

}  // namespace pocketlora::vk
