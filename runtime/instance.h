#pragma once
// VkInstance with optional Khronos validation. Validation messages (warnings and errors) are collected in a
// process-wide log so tests can fail the test that produced them.
#include "runtime/vulkan_api.h"

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace pocketlora::vk {

class ValidationLog {
 public:
  static ValidationLog& global();
  void add(std::string msg);
  std::uint64_t count() const { return count_.load(); }
  std::vector<std::string> take();  // returns and clears the stored messages
  // Removes n messages from the count: for tests that provoke messages on purpose.
  void forget(std::uint64_t n) { count_ -= n; }

 private:
  std::atomic<std::uint64_t> count_{0};
  std::mutex mu_;
  std::vector<std::string> messages_;
};

// True when POCKETLORA_VALIDATION=1 is set in the environment.
bool validation_requested();

class Instance {
 public:
  explicit Instance(bool validation = validation_requested());
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  VkInstance handle() const { return instance_; }
  std::uint32_t api_version() const { return api_version_; }
  bool validation_enabled() const { return messenger_ != VK_NULL_HANDLE; }
  std::vector<VkPhysicalDevice> physical_devices() const;

 private:
  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  std::uint32_t api_version_ = VK_API_VERSION_1_1;
};

}  // namespace pocketlora::vk
