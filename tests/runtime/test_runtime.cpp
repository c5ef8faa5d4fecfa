// Vulkan core: device selection, profile table, arenas, barrier derivation, timestamps, pipeline cache,
// validation capture.
#include <cstring>
#include <fstream>

#include "common/test_data.h"
#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ops/matmul.h"
#include "host/ref/matmul.h"
#include "runtime/command.h"
#include "runtime/error.h"
#include "runtime/instance.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

using Runtime = GpuTest;

TEST_F(Runtime, ListsDevicesAndRejectsBadIndexWithList) {
  auto devices = vk::list_devices(dev().instance());
  ASSERT_FALSE(devices.empty());
  EXPECT_EQ(vk::choose_device(devices, std::nullopt), dev().index());
  try {
    vk::choose_device(devices, static_cast<int>(devices.size()) + 3);
    FAIL() << "expected NoDevice";
  } catch (const vk::NoDevice& e) {
    EXPECT_NE(std::string(e.what()).find(devices[0].caps.name), std::string::npos) << e.what();
  }
}

TEST(DeviceSelection, PrefersDiscreteThenIntegratedThenCpu) {
  std::vector<vk::PhysicalDeviceInfo> d(3);
  d[0].index = 0;
  d[0].caps.type = VK_PHYSICAL_DEVICE_TYPE_CPU;
  d[1].index = 1;
  d[1].caps.type = VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU;
  d[2].index = 2;
  d[2].caps.type = VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
  EXPECT_EQ(vk::choose_device(d, std::nullopt), 2);
  d[2].caps.type = VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU;
  EXPECT_EQ(vk::choose_device(d, std::nullopt), 1);
  EXPECT_EQ(vk::choose_device(d, 0), 0);
  EXPECT_THROW(vk::choose_device(d, -1), vk::NoDevice);
  EXPECT_THROW(vk::choose_device({}, std::nullopt), vk::NoDevice);
}

TEST(DeviceProfile, TableResolvesVendorsAndOverrides) {
  vk::Capabilities caps;
  caps.vendor_id = 0x5143;  // Qualcomm
  auto adreno = vk::DeviceProfile::select(caps);
  EXPECT_EQ(adreno.name(), "qualcomm-adreno");
  EXPECT_TRUE(adreno.flag("prefer_fp16"));
  caps.vendor_id = 0x10005;
  caps.type = VK_PHYSICAL_DEVICE_TYPE_CPU;
  EXPECT_EQ(vk::DeviceProfile::select(caps).name(), "mesa-lavapipe");
  caps.vendor_id = 0x1234;  // unknown vendor: default entry defines every parameter
  auto def = vk::DeviceProfile::select(caps);
  EXPECT_EQ(def.name(), "default");
  EXPECT_GT(def.u32("matmul.tm"), 0u);
  EXPECT_THROW(def.param("no.such.param"), std::runtime_error);

  TempDir tmp;
  {
    std::ofstream(tmp / "p.json") << R"({"params": {"matmul.tm": 2}, "quirks": ["test_quirk"]})";
    std::ofstream(tmp / "bad.json") << R"({"params": {"matmul.tm": )";
    std::ofstream(tmp / "unknown.json") << R"({"params": {"matmul.tmm": 2}})";
  }
  auto over = vk::DeviceProfile::select(caps, tmp / "p.json");
  EXPECT_EQ(over.u32("matmul.tm"), 2u);
  EXPECT_TRUE(over.has_quirk("test_quirk"));
  EXPECT_THROW(vk::DeviceProfile::select(caps, tmp / "bad.json"), std::runtime_error);
  EXPECT_THROW(vk::DeviceProfile::select(caps, tmp / "unknown.json"), std::runtime_error);
}

// Fake device descriptions (vendor id + the name the driver reports) pick the entry for their GPU generation; the
// values checked are the ones each entry exists for (docs in runtime/device_profile_table.cpp).
TEST(DeviceProfile, MobileVendorsResolveByGenerationName) {
  struct Case {
    std::uint32_t vendor;
    const char* name;
    const char* profile;
    std::uint32_t gemv_wg;  // a whole number of subgroups: 128 on Adreno 6xx+ (subgroupSize 128)
    bool gemv_subgroup;
    bool shared_tiles;
  };
  const Case cases[] = {
      {0x5143, "Adreno (TM) 650", "adreno-6xx", 128, true, false},
      {0x5143, "Turnip Adreno (TM) 660", "adreno-6xx", 128, true, false},
      {0x5143, "Adreno (TM) 610", "adreno-6xx-low", 64, true, false},
      {0x5143, "Adreno (TM) 740", "adreno-7xx", 128, true, false},
      {0x5143, "Adreno (TM) 830", "adreno-8xx", 128, true, false},
      {0x5143, "Adreno (TM) 540", "qualcomm-adreno", 64, true, false},
      {0x13B5, "Mali-G78 MP20", "mali-valhall", 64, true, false},
      {0x13B5, "Mali-G710 MC10", "mali-valhall", 64, true, false},
      {0x13B5, "Mali-G715-Immortalis MC11", "mali-valhall", 64, true, false},
      {0x13B5, "Immortalis-G720 MC12", "mali-5th-gen", 64, true, false},
      {0x13B5, "Mali-G925-Immortalis MC12", "mali-5th-gen", 64, true, false},
      {0x13B5, "Mali-G71 MP8", "arm-mali", 64, false, false},  // Bifrost (4-wide): no subgroup GEMV
      {0x144D, "Samsung Xclipse 920", "xclipse-9xx", 64, true, true},
      {0x144D, "Samsung Xclipse 940", "xclipse-9xx", 64, true, true},
      {0x144D, "Samsung GPU", "samsung", 64, true, false},
      {0x1234, "Adreno (TM) 740", "default", 64, true, false},  // a name alone never matches another vendor
  };
  for (const auto& c : cases) {
    vk::Capabilities caps;
    caps.vendor_id = c.vendor;
    caps.name = c.name;
    caps.type = VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU;
    const auto p = vk::DeviceProfile::select(caps);
    EXPECT_EQ(p.name(), c.profile) << c.name;
    EXPECT_EQ(p.u32("nf4.gemv_wg"), c.gemv_wg) << c.name;
    EXPECT_EQ(p.flag("nf4.gemv_subgroup"), c.gemv_subgroup) << c.name;
    EXPECT_EQ(p.flag("nf4.shared_tiles"), c.shared_tiles) << c.name;
    // The row kernels' workgroup follows the GEMV's: whole 128-wide waves on Adreno 6xx and later.
    EXPECT_EQ(p.u32("nn.wg"), c.gemv_wg) << c.name;
  }
}

TEST_F(Runtime, ArenaAlignsResetsAndReportsOutOfMemory) {
  vk::Arena a(dev(), vk::Lifetime::Step, "activations", vk::MemoryKind::Device, 1 << 20);
  auto s1 = a.allocate(3, "x");
  auto s2 = a.allocate(100, "y");
  EXPECT_EQ(s2.offset % dev().caps().min_storage_buffer_offset_alignment, 0u);
  EXPECT_FALSE(s1.overlaps(s2));
  const auto cap = a.capacity();
  a.reset();
  auto s3 = a.allocate(3, "x again");
  EXPECT_EQ(s3.offset, s1.offset);  // reset reuses the same block
  EXPECT_EQ(a.capacity(), cap);

  vk::Arena huge(dev(), vk::Lifetime::Permanent, "weights", vk::MemoryKind::Device, 1ull << 50);
  try {
    huge.allocate(16, "too big");
    FAIL() << "expected OutOfMemory";
  } catch (const vk::OutOfMemory& e) {
    EXPECT_GE(e.requested(), 1ull << 50);
    EXPECT_GT(e.budget(), 0u);
    EXPECT_NE(std::string(e.what()).find("weights"), std::string::npos) << e.what();
  }
  EXPECT_THROW(a.allocate(dev().caps().max_storage_buffer_range + 1, "over range"), DeviceLimitError);
}

TEST_F(Runtime, BarriersDerivedFromDeclaredAccesses) {
  // Two matmuls writing different outputs from the same inputs: no hazard, no barrier. A third reading the
  // first output: read-after-write, exactly one barrier. Results stay correct.
  Tensor a = random_tensor({8, 8}, 1), b = random_tensor({8, 8}, 2);
  auto da = up(a), db = up(b);
  auto c1 = ops::allocate(arena(), {8, 8}, DType::F32, "c1");
  auto c2 = ops::allocate(arena(), {8, 8}, DType::F32, "c2");
  auto c3 = ops::allocate(arena(), {8, 8}, DType::F32, "c3");
  vk::Sequence seq(dev());
  ops::matmul(seq, da, db, c1);
  ops::matmul(seq, da, db, c2);
  EXPECT_EQ(seq.barrier_count(), 0u);
  ops::matmul(seq, c1, db, c3);
  EXPECT_EQ(seq.barrier_count(), 1u);
  ops::matmul(seq, da, db, c1);  // write-after-read of c1 by the previous dispatch
  EXPECT_EQ(seq.barrier_count(), 2u);
  seq.submit();

  Tensor r1 = Tensor::zeros({8, 8}), r3 = Tensor::zeros({8, 8});
  ref::matmul(a, b, r1);
  ref::matmul(r1, b, r3);
  Tolerance tol;
  tol.max_rel = 1e-5;
  tol.rel_floor = 1.0;
  EXPECT_TRUE(within(down(c3), r3, tol));
  EXPECT_TRUE(within(down(c2), r1, tol));
}

// A planned arena (runtime/memory.h PlannedArena): blocks addressed as one range of offsets, a slice inside one
// block; tensors the plan gave overlapping bytes at different offsets are hazards by byte range, not by slice
// identity: a write to one after a read of the other gets a barrier, a write to disjoint bytes none.
TEST_F(Runtime, PlannedArenaSlicesAndHazardsByByteRange) {
  const VkDeviceSize align = dev().alignment();
  vk::PlannedArena planned(dev(), {8 * align, 4 * align}, "test plan");
  EXPECT_EQ(planned.blocks(), 2u);
  EXPECT_GE(planned.capacity(), 12 * align);
  const vk::BufferSlice first = planned.slice(0, 4 * align, "first");
  const vk::BufferSlice shares = planned.slice(2 * align, 4 * align, "shares bytes with first");
  const vk::BufferSlice apart = planned.slice(6 * align, 2 * align, "apart");
  const vk::BufferSlice second = planned.slice(9 * align, align, "in the second block");
  EXPECT_EQ(second.offset, align);
  EXPECT_NE(second.buffer, first.buffer);
  EXPECT_TRUE(first.overlaps(shares));
  EXPECT_FALSE(first.overlaps(apart));
  EXPECT_THROW(planned.slice(7 * align, 2 * align, "across blocks"), InternalError);
  EXPECT_THROW(planned.slice(11 * align, 2 * align, "past the end"), InternalError);

  vk::Sequence seq(dev());
  seq.fill(first, 1);
  seq.copy(first.sub(2 * align, align), second);  // read of first (after its fill: one barrier)
  EXPECT_EQ(seq.barrier_count(), 1u);
  seq.fill(apart, 2);  // disjoint bytes: no hazard
  EXPECT_EQ(seq.barrier_count(), 1u);
  seq.fill(shares, 3);  // overwrites bytes first's read may still use: write-after-read
  EXPECT_EQ(seq.barrier_count(), 2u);
  seq.submit();
}

TEST_F(Runtime, TimestampsPerDispatch) {
  if (!dev().caps().timestamps) GTEST_SKIP() << "device has no compute timestamps";
  auto da = up(random_tensor({16, 16}, 1));
  auto dc = ops::allocate(arena(), {16, 16}, DType::F32, "c");
  vk::Sequence seq(dev(), true);
  ops::matmul(seq, da, da, dc);
  ops::matmul(seq, da, da, dc);
  seq.submit();
  auto t = seq.timings();
  ASSERT_EQ(t.size(), 2u);
  for (auto& x : t) {
    EXPECT_EQ(x.label, "matmul");
    EXPECT_GE(x.ms, 0.0);
  }
}

TEST_F(Runtime, ValidationMessagesAreCaptured) {
  if (!dev().instance().validation_enabled()) GTEST_SKIP() << "validation layer not enabled";
  // Deliberately invalid: a buffer with no usage bits (VUID-VkBufferCreateInfo-usage-requiredbitmask).
  const auto before = vk::ValidationLog::global().count();
  VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bi.size = 64;
  bi.usage = 0;
  VkBuffer buf = VK_NULL_HANDLE;
  if (vk::vkCreateBuffer(dev().handle(), &bi, nullptr, &buf) == VK_SUCCESS) vk::vkDestroyBuffer(dev().handle(), buf, nullptr);
  EXPECT_GT(vk::ValidationLog::global().count(), before);
  auto msgs = vk::ValidationLog::global().take();
  ASSERT_FALSE(msgs.empty());
  EXPECT_NE(msgs[0].find("usage"), std::string::npos) << msgs[0];
  // Tell the fixture these expected messages are accounted for.
  vk::ValidationLog::global().forget(vk::ValidationLog::global().count() - before);
}

TEST(PipelineCache, PersistsAndIgnoresCorruptFiles) {
  POCKETLORA_REQUIRE_GPU();
  ValidationWatch watch;  // also over the devices opened on the corrupt cache files below
  TempDir tmp;
  const auto path = tmp / "cache.bin";
  {
    vk::DeviceOptions o;
    o.pipeline_cache = path;
    OwnDevice own(o);
    vk::Device& d = own.dev();
    vk::Arena& ar = own.arena();
    auto x = ops::upload(d, ar, random_tensor({4, 4}, 1), "x");
    vk::Sequence s(d);
    ops::matmul(s, x, x, ops::allocate(ar, {4, 4}, DType::F32, "y"));
    s.submit();
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  std::uint32_t hdr[2];
  std::ifstream(path, std::ios::binary).read(reinterpret_cast<char*>(hdr), sizeof hdr);
  EXPECT_EQ(hdr[1], static_cast<std::uint32_t>(VK_PIPELINE_CACHE_HEADER_VERSION_ONE));

  for (const char* junk : {"", "garbage", "\x20\0\0\0\x01\0\0\0 wrong vendor and uuid ........"}) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << junk;
    vk::DeviceOptions o;
    o.pipeline_cache = path;
    EXPECT_NO_THROW({ vk::Device d(o); });
  }
}

}  // namespace

namespace {
TEST_F(Runtime, RowChunkedTensorsRoundTripAcrossBindings) {
  // Force small chunks (1000 bytes) so a 37 x 20 f32 tensor spans several bindings; data must survive intact.
  Tensor t = random_tensor({37, 20}, 5);
  auto d = ops::upload_row_chunked(dev(), arena(), t, "embedding", 1000);
  EXPECT_EQ(d.rows_per_chunk, 12);
  ASSERT_EQ(d.chunks.size(), 4u);
  EXPECT_EQ(d.chunks.back().dim(0), 1);
  Tensor back = ops::download(dev(), d);
  EXPECT_EQ(std::memcmp(back.raw(), t.raw(), t.nbytes()), 0);
  EXPECT_THROW(ops::allocate_row_chunked(arena(), {4, 1000}, DType::F32, "too wide", 1000), ShapeError);
}
}  // namespace
