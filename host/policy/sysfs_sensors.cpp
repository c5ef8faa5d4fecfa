#include "host/policy/sysfs_sensors.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace pocketlora {

namespace fs = std::filesystem;

namespace {

// The first line of a sysfs attribute, trimmed; nullopt when it cannot be read.
std::optional<std::string> read_attr(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  const auto b = line.find_first_not_of(" \t\r");
  if (b == std::string::npos) return std::nullopt;
  return line.substr(b, line.find_last_not_of(" \t\r") - b + 1);
}

// A whole-number attribute (sysfs writes integers); anything else is unknown.
std::optional<long long> read_int(const fs::path& p) {
  const auto s = read_attr(p);
  if (!s) return std::nullopt;
  long long v = 0;
  const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc() || end != s->data() + s->size()) return std::nullopt;
  return v;
}

// The entries of a directory, sorted (so "the first battery" is stable); empty when it does not exist.
std::vector<fs::path> list_dir(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) out.push_back(it->path());
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<double> scaled(std::optional<long long> v, double divisor) {
  if (!v) return std::nullopt;
  return static_cast<double>(*v) / divisor;
}

}  // namespace

SysfsSensors::SysfsSensors(fs::path root) : root_(std::move(root)) {}

std::string SysfsSensors::describe() const { return "sysfs " + root_.string(); }

SensorReadings SysfsSensors::read() {
  SensorReadings r;
  std::optional<bool> battery_says_charging, external_online;
  bool have_battery = false;
  for (const fs::path& ps : list_dir(root_ / "class/power_supply")) {
    const auto type = read_attr(ps / "type");
    if (!type) continue;
    if (*type == "Battery" && !have_battery) {
      have_battery = true;
      if (const auto cap = read_int(ps / "capacity")) r.battery_percent = plausible_percent(static_cast<double>(*cap));
      r.battery_temp_c = plausible_temperature_c(scaled(read_int(ps / "temp"), 10.0));  // tenths of a degree
      if (const auto status = read_attr(ps / "status")) {
        if (*status == "Charging" || *status == "Full") battery_says_charging = true;
        else if (*status == "Discharging" || *status == "Not charging") battery_says_charging = false;
      }
    } else if (*type == "Mains" || *type == "USB" || *type == "Wireless") {
      const auto online = read_int(ps / "online");
      if (online && (*online == 0 || *online == 1)) external_online = external_online.value_or(false) || *online == 1;
    }
  }
  r.charging = external_online ? external_online : battery_says_charging;

  for (const fs::path& tz : list_dir(root_ / "class/thermal")) {
    if (tz.filename().string().rfind("thermal_zone", 0) != 0) continue;
    const auto name = read_attr(tz / "type");
    if (!name) continue;
    r.zones.push_back({*name, plausible_temperature_c(scaled(read_int(tz / "temp"), 1000.0))});
  }

  for (const fs::path& bl : list_dir(root_ / "class/backlight")) {
    if (const auto power = read_int(bl / "bl_power")) {
      r.screen_on = *power == 0;  // FB_BLANK_UNBLANK
      break;
    }
    if (const auto brightness = read_int(bl / "brightness"); brightness && *brightness >= 0) {
      r.screen_on = *brightness > 0;
      break;
    }
  }
  return r;
}

}  // namespace pocketlora
