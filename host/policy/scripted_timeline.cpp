#include "host/policy/scripted_timeline.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "host/core/error.h"
#include "host/util/json_field.h"
#include "host/util/read_file.h"

namespace pocketlora {

namespace {

using json = nlohmann::json;

std::optional<double> opt_number(const json& v, const std::string& where) {
  if (v.is_null()) return std::nullopt;
  if (!v.is_number()) throw FormatError(fmt::format("{}: expected a number or null, found {}", where, v.type_name()));
  return v.get<double>();
}

std::optional<bool> opt_bool(const json& v, const std::string& where) {
  if (v.is_null()) return std::nullopt;
  if (!v.is_boolean())
    throw FormatError(fmt::format("{}: expected true, false or null, found {}", where, v.type_name()));
  return v.get<bool>();
}

}  // namespace

ScriptedTimeline::ScriptedTimeline(const json& j, std::string origin) : origin_(std::move(origin)) {
  if (!j.is_object()) throw FormatError(origin_ + ": expected a JSON object with \"events\"");
  for (const auto& [key, v] : j.items())
    if (key != "step_seconds" && key != "end_s" && key != "events")
      throw FormatError(fmt::format("{}: unknown field '{}' (expected step_seconds, end_s, events)", origin_, key));
  step_seconds_ = json_field::opt_number(j, "step_seconds", origin_).value_or(60.0);
  if (!(step_seconds_ > 0) || !std::isfinite(step_seconds_))
    throw FormatError(
        fmt::format("{}: field 'step_seconds': expected a positive number, found {}", origin_, step_seconds_));
  const auto it = j.find("events");
  if (it == j.end() || !it->is_array() || it->empty())
    throw FormatError(origin_ + ": field 'events': expected a non-empty array of {\"t\": seconds, readings...}");
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& e = (*it)[i];
    const std::string where = fmt::format("{}: events[{}]", origin_, i);
    if (!e.is_object()) throw FormatError(where + ": expected an object");
    Event ev;
    ev.t = json_field::number(e, "t", where);
    if (!std::isfinite(ev.t) || ev.t < 0 || (!events_.empty() && ev.t < events_.back().t))
      throw FormatError(
          fmt::format("{}: field 't': expected seconds >= 0 and not before the previous event, found {}", where, ev.t));
    for (const auto& [key, v] : e.items()) {
      const std::string field = where + ": field '" + key + "'";
      if (key == "t") continue;
      if (key == "battery_percent") ev.set.battery_percent = plausible_percent(opt_number(v, field));
      else if (key == "charging") ev.set.charging = opt_bool(v, field);
      else if (key == "battery_temp_c") ev.set.battery_temp_c = plausible_temperature_c(opt_number(v, field));
      else if (key == "screen_on") ev.set.screen_on = opt_bool(v, field);
      else if (key == "user_override") {
        if (v.is_null()) ev.set.user_override.reset();
        else if (v == "none") ev.set.user_override = UserOverride::None;
        else if (v == "pause") ev.set.user_override = UserOverride::Pause;
        else if (v == "train") ev.set.user_override = UserOverride::Train;
        else
          throw FormatError(
              fmt::format("{}: expected \"none\", \"pause\", \"train\" or null, found {}", field, v.dump()));
      } else if (key == "zones") {
        if (!v.is_object())
          throw FormatError(fmt::format("{}: expected an object {{\"zone\": °C}}, found {}", field, v.type_name()));
        for (const auto& [zone, t] : v.items()) {
          ev.set.zones.push_back({zone, plausible_temperature_c(opt_number(t, field + "." + zone))});
          ev.keys.push_back("zones." + zone);
        }
        continue;
      } else {
        throw FormatError(
            fmt::format("{}: unknown field (expected t, battery_percent, charging, battery_temp_c, zones, screen_on, "
                        "user_override)",
                        field));
      }
      ev.keys.push_back(key);
    }
    events_.push_back(std::move(ev));
  }
  end_s_ = events_.back().t;
  if (const auto end = json_field::opt_number(j, "end_s", origin_)) {
    if (!std::isfinite(*end) || *end < end_s_)
      throw FormatError(fmt::format("{}: field 'end_s': expected a time at or after the last event ({}), found {}",
                                    origin_, end_s_, *end));
    end_s_ = *end;
  }
}

std::shared_ptr<ScriptedTimeline> ScriptedTimeline::load(const std::filesystem::path& path) {
  json j;
  try {
    j = json::parse(read_file_text(path));
  } catch (const json::parse_error& e) {
    throw FormatError(fmt::format("{}: not JSON: {}", path.string(), e.what()));
  }
  return std::make_shared<ScriptedTimeline>(j, path.string());
}

SensorReadings ScriptedTimeline::read() {
  SensorReadings r;
  for (const Event& ev : events_) {
    if (ev.t > now_) break;
    for (const std::string& key : ev.keys) {
      if (key == "battery_percent") r.battery_percent = ev.set.battery_percent;
      else if (key == "charging") r.charging = ev.set.charging;
      else if (key == "battery_temp_c") r.battery_temp_c = ev.set.battery_temp_c;
      else if (key == "screen_on") r.screen_on = ev.set.screen_on;
      else if (key == "user_override") r.user_override = ev.set.user_override;
      else {
        const std::string zone = key.substr(6);  // "zones."
        const auto src =
            std::find_if(ev.set.zones.begin(), ev.set.zones.end(), [&](auto& z) { return z.name == zone; });
        auto dst = std::find_if(r.zones.begin(), r.zones.end(), [&](auto& z) { return z.name == zone; });
        if (dst == r.zones.end()) r.zones.push_back(*src);
        else *dst = *src;
      }
    }
  }
  return r;
}

void ScriptedTimeline::wait_s(double seconds) { now_ += std::max(0.0, seconds); }

double ScriptedTimeline::step_done(double /*measured_s*/) {
  now_ += step_seconds_;
  return step_seconds_;
}

}  // namespace pocketlora
