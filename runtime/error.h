#pragma once
// Every VkResult is checked and becomes a typed exception carrying what was being done. The types derive from the
// library's one error hierarchy (host/core/error.h: the only host/ header runtime/ may include — it knows nothing of
// LLMs), so a VkResult surfaces with the same ErrorCode whichever layer catches it. DeviceLost and OutOfMemory are
// separate types because the trainer reacts to them (save last good checkpoint, retry smaller).
#include "runtime/vulkan_api.h"

#include <cstdint>
#include <string>

#include "host/core/error.h"

namespace pocketlora::vk {

const char* result_name(VkResult r);

class VulkanError : public Error {
 public:
  VulkanError(VkResult r, const std::string& what);
  VkResult result() const { return result_; }

 protected:
  VulkanError(ErrorCode code, VkResult r, const std::string& what);

 private:
  VkResult result_;
};

class DeviceLost : public VulkanError {
 public:
  explicit DeviceLost(const std::string& what);
};

class OutOfMemory : public VulkanError {
 public:
  OutOfMemory(VkResult r, const std::string& what, std::uint64_t requested, std::uint64_t budget);
  std::uint64_t requested() const { return requested_; }
  std::uint64_t budget() const { return budget_; }

 private:
  std::uint64_t requested_, budget_;
};

// No loader, no driver or no usable device: the message says what to install.
using NoDevice = CodedError<ErrorCode::NoDevice>;

[[noreturn]] void throw_result(VkResult r, const std::string& what);
inline void check(VkResult r, const char* what) {
  if (r != VK_SUCCESS) throw_result(r, what);
}

}  // namespace pocketlora::vk

#define PL_VK_CHECK(expr) ::pocketlora::vk::check((expr), #expr)
