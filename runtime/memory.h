#pragma once
// Device memory: a few large VkDeviceMemory blocks (phones cap the allocation count), each with one VkBuffer
// over it, sub-allocated by arenas with lifetimes: Permanent (weights, adapters, optimizer state), Step
// (activations, reset every training step) and Scratch (per op). A BufferSlice is what shaders bind.
#include "runtime/vulkan_api.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pocketlora::vk {

class Device;

struct BufferSlice {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize offset = 0;
  VkDeviceSize size = 0;
  std::uint8_t* mapped = nullptr;  // host pointer when the block is host-visible (UMA devices), else null

  bool valid() const { return buffer != VK_NULL_HANDLE; }
  BufferSlice sub(VkDeviceSize off, VkDeviceSize len) const;  // range-checked sub-range
  bool overlaps(const BufferSlice& o) const {
    return buffer == o.buffer && offset < o.offset + o.size && o.offset < offset + size;
  }
};

enum class Lifetime { Permanent, Step, Scratch };
const char* lifetime_name(Lifetime l);

enum class MemoryKind {
  Device,   // fastest for the GPU; host-visible too on unified-memory devices
  Staging,  // host-visible + coherent, for uploads/downloads on discrete GPUs
};

// One VkDeviceMemory + VkBuffer spanning it.
class MemoryBlock {
 public:
  MemoryBlock(Device& dev, VkDeviceSize size, MemoryKind kind, const std::string& label);
  ~MemoryBlock();
  MemoryBlock(const MemoryBlock&) = delete;
  MemoryBlock& operator=(const MemoryBlock&) = delete;

  VkDeviceSize size() const { return size_; }
  VkBuffer buffer() const { return buffer_; }
  std::uint8_t* mapped() const { return mapped_; }

 private:
  Device& dev_;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceSize size_ = 0;
  std::uint8_t* mapped_ = nullptr;
  std::uint32_t heap_ = 0;
};

// Bump allocator over blocks. Allocations are aligned to the device's storage-buffer offset alignment (and at
// least 16 bytes for vec4 access). reset() frees everything at once (Step/Scratch lifetimes); blocks are kept.
// With the device's default block size, blocks grow from 1 MiB, doubling up to it, so an arena holding a small
// model's weights or a few ops' scratch does not hold a whole 64 MiB block (the extra blocks of a large arena are
// few: six below 64 MiB); an explicit block size is used for every block.
class Arena {
 public:
  Arena(Device& dev, Lifetime lifetime, std::string name, MemoryKind kind = MemoryKind::Device,
        VkDeviceSize block_size = 0 /* 0: device default, grown to */);
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Throws OutOfMemory (requested size + heap budget) or DeviceLimitError for a size above the
  // per-binding limit (maxStorageBufferRange) — callers must split such tensors.
  BufferSlice allocate(VkDeviceSize size, const std::string& what);
  // The allocations to come total about `bytes` (e.g. a planned model's weights): until they are handed out, a
  // new block is sized to what is still expected beyond the free tails of the blocks held (at most the block
  // size) instead of by doubling, so the arena ends near what it hands out rather than up to a block above it.
  void expect(VkDeviceSize bytes) {
    expected_ = bytes;
    expecting_ = bytes > 0;
  }
  void reset();
  VkDeviceSize used() const { return used_; }
  VkDeviceSize capacity() const;
  VkDeviceSize peak() const { return peak_; }
  Lifetime lifetime() const { return lifetime_; }
  const std::string& name() const { return name_; }
  Device& device() const { return dev_; }

 private:
  Device& dev_;
  Lifetime lifetime_;
  std::string name_;
  MemoryKind kind_;
  VkDeviceSize block_size_;
  bool grow_;  // blocks double from kFirstBlock up to block_size_
  std::vector<std::unique_ptr<MemoryBlock>> blocks_;
  std::vector<VkDeviceSize> cursors_;  // per block: bytes handed out from its start
  VkDeviceSize used_ = 0, peak_ = 0;
  VkDeviceSize expected_ = 0;  // bytes still expected (expect())
  bool expecting_ = false;     // expect() was called: past the expected bytes, blocks are as large as asked
};

// An arena whose layout the caller planned (a training step's tensors, placed by lifetime so that tensors never
// live at the same time share bytes): blocks of the given sizes, each one VkDeviceMemory + VkBuffer, addressed as
// one range of offsets (block i starts at the sum of the sizes before it). A slice must lie inside one block.
class PlannedArena {
 public:
  PlannedArena(Device& dev, const std::vector<VkDeviceSize>& block_sizes, const std::string& name,
               MemoryKind kind = MemoryKind::Device);
  PlannedArena(const PlannedArena&) = delete;
  PlannedArena& operator=(const PlannedArena&) = delete;

  // InternalError naming `what` when [offset, offset + size) leaves the arena or crosses a block boundary.
  BufferSlice slice(VkDeviceSize offset, VkDeviceSize size, const std::string& what) const;
  VkDeviceSize capacity() const;  // bytes held (blocks as allocated: the driver may round each up)
  std::size_t blocks() const { return blocks_.size(); }

 private:
  std::string name_;
  std::vector<VkDeviceSize> starts_;  // offset of each block in the arena
  std::vector<VkDeviceSize> sizes_;   // as requested
  std::vector<std::unique_ptr<MemoryBlock>> blocks_;
};

}  // namespace pocketlora::vk
