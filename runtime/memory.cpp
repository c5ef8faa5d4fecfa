#include "runtime/memory.h"

#include <algorithm>

#include "runtime/device.h"
#include "runtime/error.h"

namespace pocketlora::vk {

const char* lifetime_name(Lifetime l) {
  switch (l) {
    case Lifetime::Permanent: return "permanent";
    case Lifetime::Step: return "step";
    case Lifetime::Scratch: return "scratch";
  }
  return "?";
}

BufferSlice BufferSlice::sub(VkDeviceSize off, VkDeviceSize len) const {
  if (off > size || len > size - off)
    throw InternalError("sub-range [" + std::to_string(off) + ", +" + std::to_string(len) + ") outside a " +
                  std::to_string(size) + "-byte slice");
  return {buffer, offset + off, len, mapped ? mapped + off : nullptr};
}

MemoryBlock::MemoryBlock(Device& dev, VkDeviceSize size, MemoryKind kind, const std::string& label)
    : dev_(dev), size_(size) {
  VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bi.size = size;
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  VkResult cr = vkCreateBuffer(dev.handle(), &bi, nullptr, &buffer_);
  if (cr == VK_ERROR_OUT_OF_DEVICE_MEMORY || cr == VK_ERROR_OUT_OF_HOST_MEMORY)
    throw OutOfMemory(cr, "vkCreateBuffer for " + label, size, dev.caps().device_local_budget());
  check(cr, "vkCreateBuffer");
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(dev.handle(), buffer_, &req);
  std::uint32_t type = 0;
  try {
    type = dev.memory_type(kind, req.memoryTypeBits);
    heap_ = dev.heap_of(type);
    dev.reserve_heap(heap_, req.size, label);
  } catch (...) {
    vkDestroyBuffer(dev.handle(), buffer_, nullptr);
    throw;
  }
  VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  ai.allocationSize = req.size;
  ai.memoryTypeIndex = type;
  VkResult r = vkAllocateMemory(dev.handle(), &ai, nullptr, &memory_);
  if (r != VK_SUCCESS) {
    dev.release_heap(heap_, req.size);
    vkDestroyBuffer(dev.handle(), buffer_, nullptr);
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
      throw OutOfMemory(r, "vkAllocateMemory for " + label, req.size, dev.caps().heaps.at(heap_).budget);
    throw_result(r, "vkAllocateMemory for " + label);
  }
  size_ = req.size;
  check(vkBindBufferMemory(dev.handle(), buffer_, memory_, 0), "vkBindBufferMemory");
  if (dev.memory_type_flags(type) & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) {
    void* p = nullptr;
    check(vkMapMemory(dev.handle(), memory_, 0, VK_WHOLE_SIZE, 0, &p), "vkMapMemory");
    mapped_ = static_cast<std::uint8_t*>(p);
  }
}

MemoryBlock::~MemoryBlock() {
  if (mapped_) vkUnmapMemory(dev_.handle(), memory_);
  vkDestroyBuffer(dev_.handle(), buffer_, nullptr);
  vkFreeMemory(dev_.handle(), memory_, nullptr);
  dev_.release_heap(heap_, size_);
}

Arena::Arena(Device& dev, Lifetime lifetime, std::string name, MemoryKind kind, VkDeviceSize block_size)
    : dev_(dev), lifetime_(lifetime), name_(std::move(name)), kind_(kind),
      block_size_(block_size ? block_size : dev.block_size()), grow_(block_size == 0) {}

BufferSlice Arena::allocate(VkDeviceSize size, const std::string& what) {
  if (size == 0) size = 4;  // zero-sized tensors still bind a valid range
  const VkDeviceSize align = dev_.alignment();
  const VkDeviceSize rounded = (size + align - 1) / align * align;
  if (size > dev_.caps().max_storage_buffer_range)
    throw DeviceLimitError("arena '" + name_ + "': " + what + " needs " + std::to_string(size) +
                  " bytes in one binding but the device's maxStorageBufferRange is " +
                  std::to_string(dev_.caps().max_storage_buffer_range) + "; split the tensor");
  // First fit over the blocks' free tails, then a new block: a tensor that does not fit the newest block's tail
  // leaves that tail to later, smaller tensors instead of wasting it (a 1B model's weights are ~20 blocks).
  std::size_t i = 0;
  while (i < blocks_.size() && cursors_[i] + rounded > blocks_[i]->size()) ++i;
  if (i == blocks_.size()) {
    constexpr VkDeviceSize kFirstBlock = 1 << 20;
    const VkDeviceSize grown = kFirstBlock << std::min<std::size_t>(blocks_.size(), 20);
    VkDeviceSize want = grow_ ? std::min(block_size_, grown) : block_size_;
    if (expecting_) {
      VkDeviceSize tails = 0;  // free bytes later, smaller allocations may still take
      for (std::size_t b = 0; b < blocks_.size(); ++b) tails += blocks_[b]->size() - cursors_[b];
      want = expected_ > tails ? std::min(block_size_, expected_ - tails) : 0;
    }
    const VkDeviceSize bs = std::max(want, rounded);
    blocks_.push_back(std::make_unique<MemoryBlock>(dev_, bs, kind_, "arena '" + name_ + "' (" + what + ")"));
    cursors_.push_back(0);
  }
  MemoryBlock& b = *blocks_[i];
  BufferSlice s{b.buffer(), cursors_[i], size, b.mapped() ? b.mapped() + cursors_[i] : nullptr};
  cursors_[i] += rounded;
  used_ += rounded;
  expected_ -= std::min(expected_, rounded);
  peak_ = std::max(peak_, used_);
  return s;
}

void Arena::reset() {
  std::fill(cursors_.begin(), cursors_.end(), VkDeviceSize{0});
  used_ = 0;
}

VkDeviceSize Arena::capacity() const {
  VkDeviceSize c = 0;
  for (auto& b : blocks_) c += b->size();
  return c;
}

PlannedArena::PlannedArena(Device& dev, const std::vector<VkDeviceSize>& block_sizes, const std::string& name,
                           MemoryKind kind)
    : name_(name), sizes_(block_sizes) {
  VkDeviceSize at = 0;
  for (std::size_t i = 0; i < block_sizes.size(); ++i) {
    if (block_sizes[i] > dev.caps().max_storage_buffer_range)
      throw DeviceLimitError("arena '" + name_ + "': block " + std::to_string(i) + " of " +
                             std::to_string(block_sizes[i]) + " bytes is above maxStorageBufferRange " +
                             std::to_string(dev.caps().max_storage_buffer_range));
    starts_.push_back(at);
    at += block_sizes[i];
    blocks_.push_back(std::make_unique<MemoryBlock>(dev, block_sizes[i], kind,
                                                    "arena '" + name_ + "' block " + std::to_string(i)));
  }
}

BufferSlice PlannedArena::slice(VkDeviceSize offset, VkDeviceSize size, const std::string& what) const {
  // The last block starting at or before offset.
  const auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
  const auto i = static_cast<std::size_t>(it - starts_.begin());
  if (i == 0 || offset - starts_[i - 1] + size > sizes_[i - 1])
    throw InternalError("arena '" + name_ + "': " + what + " at bytes [" + std::to_string(offset) + ", " +
                        std::to_string(offset + size) + ") is not inside one of its " +
                        std::to_string(blocks_.size()) + " blocks");
  const MemoryBlock& b = *blocks_[i - 1];
  const VkDeviceSize in_block = offset - starts_[i - 1];
  return {b.buffer(), in_block, size, b.mapped() ? b.mapped() + in_block : nullptr};
}

VkDeviceSize PlannedArena::capacity() const {
  VkDeviceSize c = 0;
  for (const auto& b : blocks_) c += b->size();
  return c;
}

}  // namespace pocketlora::vk
