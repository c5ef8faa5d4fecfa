// The sensor sources (host/policy/): sysfs over a fake tree, including garbage and sensors that disappear;
// pushed readings from many threads; the scripted timeline's carry-over, nulls and file errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/policy/pushed_sensors.h"
#include "host/policy/scripted_timeline.h"
#include "host/policy/sysfs_sensors.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

const ThermalZone* zone(const SensorReadings& r, const std::string& name) {
  for (const auto& z : r.zones)
    if (z.name == name) return &z;
  return nullptr;
}

// A phone-like tree: a battery, a charger, three thermal zones (one garbage, one absurd), a backlight.
struct FakeSysfs {
  test::TempDir dir;
  fs::path ps = dir / "class/power_supply", th = dir / "class/thermal";
  FakeSysfs() {
    put(ps / "battery/type", "Battery\n");
    put(ps / "battery/capacity", "80\n");
    put(ps / "battery/status", "Discharging\n");
    put(ps / "battery/temp", "312\n");
    put(ps / "ac/type", "Mains\n");
    put(ps / "ac/online", "1\n");
    put(th / "thermal_zone0/type", "gpu-thermal\n");
    put(th / "thermal_zone0/temp", "45500\n");
    put(th / "thermal_zone1/type", "skin\n");
    put(th / "thermal_zone1/temp", "warm\n");
    put(th / "thermal_zone2/type", "cpu\n");
    put(th / "thermal_zone2/temp", "-300000\n");
    put(dir / "class/backlight/panel/bl_power", "0\n");
  }
};

TEST(SysfsSensors, ReadsAPhoneLikeTree) {
  FakeSysfs fake;
  const SensorReadings r = SysfsSensors(fake.dir.path()).read();
  EXPECT_EQ(r.battery_percent, 80.0);
  EXPECT_EQ(r.charging, true);  // the charger is online, whatever the battery's status says
  ASSERT_TRUE(r.battery_temp_c);
  EXPECT_DOUBLE_EQ(*r.battery_temp_c, 31.2);
  ASSERT_EQ(r.zones.size(), 3u);
  EXPECT_EQ(zone(r, "gpu-thermal")->temperature_c, 45.5);
  EXPECT_FALSE(zone(r, "skin")->temperature_c);  // "warm"
  EXPECT_FALSE(zone(r, "cpu")->temperature_c);   // -300 °C
  EXPECT_EQ(r.screen_on, true);
  EXPECT_FALSE(r.user_override);
}

TEST(SysfsSensors, GarbageAndVanishingSensorsAreUnknown) {
  FakeSysfs fake;
  SysfsSensors sensors(fake.dir.path());
  put(fake.ps / "battery/capacity", "abc\n");
  put(fake.ps / "battery/temp", "5000\n");  // 500 °C
  put(fake.dir / "class/backlight/panel/bl_power", "4\n");
  fs::remove_all(fake.ps / "ac");  // unplugged charger driver: the battery's own status decides
  SensorReadings r = sensors.read();
  EXPECT_FALSE(r.battery_percent);
  EXPECT_FALSE(r.battery_temp_c);
  EXPECT_EQ(r.charging, false);
  EXPECT_EQ(r.screen_on, false);

  put(fake.ps / "battery/status", "Unknown\n");
  EXPECT_FALSE(sensors.read().charging);
  fs::remove(fake.ps / "battery/status");
  fs::remove(fake.th / "thermal_zone0/temp");
  r = sensors.read();
  EXPECT_FALSE(r.charging);
  EXPECT_FALSE(zone(r, "gpu-thermal")->temperature_c);

  fs::remove_all(fake.dir / "class");
  r = sensors.read();
  EXPECT_FALSE(r.battery_percent);
  EXPECT_FALSE(r.charging);
  EXPECT_FALSE(r.battery_temp_c);
  EXPECT_TRUE(r.zones.empty());
  EXPECT_FALSE(r.screen_on);
  EXPECT_FALSE(SysfsSensors(fake.dir / "no-such-dir").read().battery_percent);
}

TEST(PushedSensors, ThreadSafePushAndPlausibilityFilter) {
  PushedSensors s;
  EXPECT_FALSE(s.read().battery_percent);  // nothing pushed: unknown
  std::thread writer([&] {
    for (int i = 0; i <= 1000; ++i) {
      SensorReadings r;
      r.battery_percent = i % 101;
      r.battery_temp_c = 30.0;
      r.zones = {{"skin", 30.0 + i % 5}};
      s.push(r);
    }
  });
  for (int i = 0; i < 1000; ++i) {
    const SensorReadings r = s.read();
    if (r.battery_percent) {
      ASSERT_EQ(r.zones.size(), 1u);  // never a torn set of readings
    }
  }
  writer.join();
  EXPECT_EQ(s.read().battery_percent, 1000 % 101);
  SensorReadings hot;
  hot.battery_temp_c = 500;
  hot.battery_percent = -5;
  s.push(hot);
  EXPECT_FALSE(s.read().battery_temp_c);
  EXPECT_FALSE(s.read().battery_percent);
}

TEST(ScriptedTimeline, EventsCarryOverNullsClearAndTimeMovesOnlyWhenTold) {
  ScriptedTimeline tl(json{{"step_seconds", 10},
                           {"events",
                            {{{"t", 0}, {"charging", true}, {"battery_temp_c", 30}, {"zones", {{"skin", 31}}}},
                             {{"t", 15}, {"battery_temp_c", nullptr}, {"zones", {{"gpu", -300}}}},
                             {{"t", 25}, {"user_override", "pause"}}}}},
                      "tl.json");
  EXPECT_EQ(tl.read().battery_temp_c, 30.0);
  EXPECT_EQ(tl.step_done(123.0), 10.0);  // the scripted step length, not the measured one
  EXPECT_EQ(tl.now_s(), 10.0);
  EXPECT_EQ(tl.read().battery_temp_c, 30.0);
  tl.wait_s(5);
  SensorReadings r = tl.read();
  EXPECT_FALSE(r.battery_temp_c);
  EXPECT_EQ(r.charging, true);
  ASSERT_EQ(r.zones.size(), 2u);
  EXPECT_EQ(zone(r, "skin")->temperature_c, 31.0);
  EXPECT_FALSE(zone(r, "gpu")->temperature_c);  // absurd: unknown
  EXPECT_FALSE(tl.ended());
  tl.wait_s(10);
  EXPECT_EQ(tl.read().user_override, UserOverride::Pause);
  EXPECT_TRUE(tl.ended());
}

TEST(ScriptedTimeline, MalformedFilesNameTheField) {
  auto err = [](const json& j) { return test::error_of<FormatError>([&] { ScriptedTimeline(j, "tl.json"); }); };
  EXPECT_TRUE(test::mentions(err(json{{"events", {{{"t", 5}}, {{"t", 1}}}}}), {"tl.json", "events[1]", "'t'"}));
  EXPECT_TRUE(
      test::mentions(err(json{{"events", {{{"t", 0}, {"charging", "yes"}}}}}), {"events[0]", "'charging'", "string"}));
  EXPECT_TRUE(test::mentions(err(json{{"events", {{{"t", 0}, {"batery_percent", 3}}}}}),
                             {"events[0]", "'batery_percent'", "unknown field"}));
  EXPECT_TRUE(test::mentions(err(json{{"events", json::array()}}), {"tl.json", "'events'"}));
  EXPECT_TRUE(test::mentions(err(json{{"events", {{{"t", 0}, {"user_override", "now"}}}}}), {"user_override", "now"}));
  EXPECT_TRUE(test::mentions(err(json{{"step_seconds", 0}, {"events", {{{"t", 0}}}}}), {"step_seconds"}));
}

}  // namespace
}  // namespace pocketlora
