#pragma once
// Record once, submit many. Each dispatch declares the slices it reads and writes (in binding order); the
// sequence derives the barriers from those declarations (read-after-write, write-after-write, write-after-read)
// instead of anyone writing them by hand. Optional per-dispatch GPU timestamps.
#include "runtime/vulkan_api.h"

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "runtime/memory.h"
#include "runtime/pipeline.h"

namespace pocketlora::vk {

class Device;

struct Access {
  BufferSlice slice;
  bool write = false;
};
inline Access reads(const BufferSlice& s) { return {s, false}; }
inline Access writes(const BufferSlice& s) { return {s, true}; }  // read-modify-write is also `writes`

struct DispatchTiming {
  std::string label;
  double ms = 0;
};

class Sequence {
 public:
  explicit Sequence(Device& dev, bool timestamps = false);
  ~Sequence();
  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;

  void dispatch(const Pipeline& p, std::initializer_list<Access> args, const void* push, std::uint32_t push_size,
                std::array<std::uint32_t, 3> groups, const std::string& label = {});
  void dispatch(const Pipeline& p, const std::vector<Access>& args, const void* push, std::uint32_t push_size,
                std::array<std::uint32_t, 3> groups, const std::string& label = {});
  template <typename Push>
  void dispatch(const Pipeline& p, std::initializer_list<Access> args, const Push& push,
                std::array<std::uint32_t, 3> groups, const std::string& label = {}) {
    dispatch(p, args, &push, sizeof(Push), groups, label);
  }
  void copy(const BufferSlice& src, const BufferSlice& dst);
  void fill(const BufferSlice& dst, std::uint32_t value);  // dst.size must be a multiple of 4

  void finish();  // ends recording; implicit in submit()
  void submit();  // submits and waits; may be called many times
  Device& device() const { return dev_; }
  std::uint32_t dispatch_count() const { return dispatches_; }
  std::uint32_t barrier_count() const { return barriers_; }
  std::vector<DispatchTiming> timings() const;  // from the last submit(), empty without timestamps

 private:
  void before(const std::vector<Access>& accesses);
  VkDescriptorSet allocate_set(const Pipeline& p);

  Device& dev_;
  VkCommandBuffer cmd_ = VK_NULL_HANDLE;
  std::vector<VkDescriptorPool> pools_;
  std::uint32_t sets_in_pool_ = 0;
  std::vector<BufferSlice> pending_reads_, pending_writes_;
  std::uint32_t dispatches_ = 0, barriers_ = 0;
  bool finished_ = false, submitted_ = false;
  VkQueryPool queries_ = VK_NULL_HANDLE;
  std::vector<std::string> labels_;
  std::vector<std::uint64_t> stamps_;
};

}  // namespace pocketlora::vk
