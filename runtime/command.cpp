#include "runtime/command.h"

#include <algorithm>

#include "runtime/device.h"
#include "runtime/error.h"

namespace pocketlora::vk {

namespace {
constexpr std::uint32_t kSetsPerPool = 64;
constexpr std::uint32_t kBuffersPerSet = 16;
constexpr std::uint32_t kMaxTimedDispatches = 2048;
}  // namespace

Sequence::Sequence(Device& dev, bool timestamps) : dev_(dev) {
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = dev.command_pool();
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  check(vkAllocateCommandBuffers(dev.handle(), &ai, &cmd_), "vkAllocateCommandBuffers");
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  check(vkBeginCommandBuffer(cmd_, &bi), "vkBeginCommandBuffer");
  if (timestamps && dev.caps().timestamps) {
    VkQueryPoolCreateInfo qi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qi.queryCount = 2 * kMaxTimedDispatches;
    check(vkCreateQueryPool(dev.handle(), &qi, nullptr, &queries_), "vkCreateQueryPool");
    vkCmdResetQueryPool(cmd_, queries_, 0, qi.queryCount);
  }
}

Sequence::~Sequence() {
  if (cmd_) vkFreeCommandBuffers(dev_.handle(), dev_.command_pool(), 1, &cmd_);
  for (auto p : pools_) vkDestroyDescriptorPool(dev_.handle(), p, nullptr);
  if (queries_) vkDestroyQueryPool(dev_.handle(), queries_, nullptr);
}

VkDescriptorSet Sequence::allocate_set(const Pipeline& p) {
  if (pools_.empty() || sets_in_pool_ == kSetsPerPool) {
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSetsPerPool * kBuffersPerSet};
    VkDescriptorPoolCreateInfo ci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    ci.maxSets = kSetsPerPool;
    ci.poolSizeCount = 1;
    ci.pPoolSizes = &size;
    VkDescriptorPool pool;
    check(vkCreateDescriptorPool(dev_.handle(), &ci, nullptr, &pool), "vkCreateDescriptorPool");
    pools_.push_back(pool);
    sets_in_pool_ = 0;
  }
  VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  ai.descriptorPool = pools_.back();
  ai.descriptorSetCount = 1;
  ai.pSetLayouts = &p.set_layout;
  VkDescriptorSet set;
  check(vkAllocateDescriptorSets(dev_.handle(), &ai, &set), "vkAllocateDescriptorSets");
  ++sets_in_pool_;
  return set;
}

void Sequence::before(const std::vector<Access>& accesses) {
  bool hazard = false;
  for (auto& a : accesses) {
    for (auto& w : pending_writes_) hazard |= a.slice.overlaps(w);
    if (a.write)
      for (auto& r : pending_reads_) hazard |= a.slice.overlaps(r);
  }
  if (hazard) {
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                       VK_ACCESS_TRANSFER_WRITE_BIT;
    const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(cmd_, stages, stages, 0, 1, &mb, 0, nullptr, 0, nullptr);
    ++barriers_;
    pending_reads_.clear();
    pending_writes_.clear();
  }
  for (auto& a : accesses) (a.write ? pending_writes_ : pending_reads_).push_back(a.slice);
}

void Sequence::dispatch(const Pipeline& p, std::initializer_list<Access> args, const void* push,
                        std::uint32_t push_size, std::array<std::uint32_t, 3> groups, const std::string& label) {
  dispatch(p, std::vector<Access>(args), push, push_size, groups, label);
}

void Sequence::dispatch(const Pipeline& p, const std::vector<Access>& args, const void* push,
                        std::uint32_t push_size, std::array<std::uint32_t, 3> groups, const std::string& label) {
  const std::string who = "dispatch of '" + p.key.shader + "'" + (label.empty() ? "" : " (" + label + ")");
  if (finished_) throw InternalError(who + " after the sequence was finished");
  if (args.size() != p.key.num_buffers)
    throw InternalError(who + ": " + std::to_string(args.size()) + " buffers given, pipeline has " +
                  std::to_string(p.key.num_buffers) + " bindings");
  if (push_size != p.key.push_size)
    throw InternalError(who + ": push constants of " + std::to_string(push_size) + " bytes, pipeline expects " +
                  std::to_string(p.key.push_size));
  const auto& caps = dev_.caps();
  for (int i = 0; i < 3; ++i)
    if (groups[i] == 0 || groups[i] > caps.max_workgroup_count[i])
      throw DeviceLimitError(who + ": workgroup count " + std::to_string(groups[i]) + " in dimension " + std::to_string(i) +
                    " outside [1, " + std::to_string(caps.max_workgroup_count[i]) + "]");
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& s = args[i].slice;
    if (!s.valid()) throw InternalError(who + ": binding " + std::to_string(i) + " is not a valid buffer");
    if (s.offset % caps.min_storage_buffer_offset_alignment != 0)
      throw InternalError(who + ": binding " + std::to_string(i) + " offset " + std::to_string(s.offset) +
                    " is not aligned to " + std::to_string(caps.min_storage_buffer_offset_alignment));
    if (s.size > caps.max_storage_buffer_range)
      throw DeviceLimitError(who + ": binding " + std::to_string(i) + " spans " + std::to_string(s.size) +
                    " bytes, above maxStorageBufferRange " + std::to_string(caps.max_storage_buffer_range));
  }
  before(args);

  VkDescriptorSet set = allocate_set(p);
  std::vector<VkDescriptorBufferInfo> infos(args.size());
  std::vector<VkWriteDescriptorSet> writes_(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    // Descriptor ranges are rounded up to 4 bytes: shaders read whole 32-bit words.
    infos[i] = {args[i].slice.buffer, args[i].slice.offset, (args[i].slice.size + 3) / 4 * 4};
    writes_[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
    writes_[i].dstSet = set;
    writes_[i].dstBinding = static_cast<std::uint32_t>(i);
    writes_[i].descriptorCount = 1;
    writes_[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes_[i].pBufferInfo = &infos[i];
  }
  vkUpdateDescriptorSets(dev_.handle(), static_cast<std::uint32_t>(writes_.size()), writes_.data(), 0, nullptr);

  const bool timed = queries_ && dispatches_ < kMaxTimedDispatches;
  if (timed) {
    vkCmdWriteTimestamp(cmd_, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, queries_, 2 * dispatches_);
    labels_.push_back(label.empty() ? p.key.shader : label);
  }
  vkCmdBindPipeline(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline);
  vkCmdBindDescriptorSets(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &set, 0, nullptr);
  if (push_size) vkCmdPushConstants(cmd_, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
  vkCmdDispatch(cmd_, groups[0], groups[1], groups[2]);
  if (timed) vkCmdWriteTimestamp(cmd_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queries_, 2 * dispatches_ + 1);
  ++dispatches_;
}

void Sequence::copy(const BufferSlice& src, const BufferSlice& dst) {
  if (finished_) throw InternalError("copy after the sequence was finished");
  if (dst.size < src.size)
    throw InternalError("copy of " + std::to_string(src.size) + " bytes into a " + std::to_string(dst.size) + "-byte slice");
  before({reads(src), writes(dst)});
  VkBufferCopy region{src.offset, dst.offset, src.size};
  vkCmdCopyBuffer(cmd_, src.buffer, dst.buffer, 1, &region);
}

void Sequence::fill(const BufferSlice& dst, std::uint32_t value) {
  if (finished_) throw InternalError("fill after the sequence was finished");
  if (dst.size % 4 != 0 || dst.offset % 4 != 0)
    throw InternalError("fill of a slice whose offset/size (" + std::to_string(dst.offset) + ", " +
                  std::to_string(dst.size) + ") is not a multiple of 4");
  before({writes(dst)});
  vkCmdFillBuffer(cmd_, dst.buffer, dst.offset, dst.size, value);
}

void Sequence::finish() {
  if (finished_) return;
  // Make the results visible to host reads of mapped memory after the fence.
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
  check(vkEndCommandBuffer(cmd_), "vkEndCommandBuffer");
  finished_ = true;
}

void Sequence::submit() {
  finish();
  dev_.submit_and_wait(cmd_, "vkQueueSubmit(sequence)");
  submitted_ = true;
  if (queries_ && dispatches_ > 0) {
    const std::uint32_t n = 2 * std::min(dispatches_, kMaxTimedDispatches);
    stamps_.assign(n, 0);
    check(vkGetQueryPoolResults(dev_.handle(), queries_, 0, n, n * sizeof(std::uint64_t), stamps_.data(),
                                sizeof(std::uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
          "vkGetQueryPoolResults");
  }
}

std::vector<DispatchTiming> Sequence::timings() const {
  std::vector<DispatchTiming> out;
  const double period = dev_.caps().timestamp_period_ns;
  for (std::size_t i = 0; i + 1 < stamps_.size() && i / 2 < labels_.size(); i += 2)
    out.push_back({labels_[i / 2], static_cast<double>(stamps_[i + 1] - stamps_[i]) * period * 1e-6});
  return out;
}

}  // namespace pocketlora::vk
