#include "runtime/instance.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "runtime/error.h"
#include "runtime/vulkan_loader.h"

namespace pocketlora::vk {

ValidationLog& ValidationLog::global() {
  static ValidationLog log;
  return log;
}

void ValidationLog::add(std::string msg) {
  std::lock_guard lock(mu_);
  ++count_;
  if (messages_.size() < 64) messages_.push_back(std::move(msg));
}

std::vector<std::string> ValidationLog::take() {
  std::lock_guard lock(mu_);
  return std::exchange(messages_, {});
}

bool validation_requested() {
  const char* v = std::getenv("POCKETLORA_VALIDATION");
  return v && std::strcmp(v, "0") != 0 && *v != '\0';
}

namespace {

VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                VkDebugUtilsMessageTypeFlagsEXT,
                                                const VkDebugUtilsMessengerCallbackDataEXT* data, void*) {
  const char* level = (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) ? "error" : "warning";
  ValidationLog::global().add(std::string("[vulkan validation ") + level + "] " +
                              (data && data->pMessage ? data->pMessage : "(no message)"));
  return VK_FALSE;
}

bool has_layer(const char* name) {
  uint32_t n = 0;
  vkEnumerateInstanceLayerProperties(&n, nullptr);
  std::vector<VkLayerProperties> layers(n);
  vkEnumerateInstanceLayerProperties(&n, layers.data());
  for (auto& l : layers)
    if (std::strcmp(l.layerName, name) == 0) return true;
  return false;
}

// Instance extensions of the loader/ICDs (layer == nullptr) or provided by one layer.
bool has_instance_extension(const char* name, const char* layer = nullptr) {
  uint32_t n = 0;
  vkEnumerateInstanceExtensionProperties(layer, &n, nullptr);
  std::vector<VkExtensionProperties> exts(n);
  vkEnumerateInstanceExtensionProperties(layer, &n, exts.data());
  for (auto& e : exts)
    if (std::strcmp(e.extensionName, name) == 0) return true;
  return false;
}

}  // namespace

Instance::Instance(bool validation) {
  load_vulkan();
  uint32_t loader_version = VK_API_VERSION_1_0;
  if (vkEnumerateInstanceVersion) vkEnumerateInstanceVersion(&loader_version);
  if (loader_version < VK_API_VERSION_1_1)
    throw NoDevice("the Vulkan loader only supports Vulkan 1.0; PocketLoRA needs 1.1 (install libvulkan1 >= 1.1)");
  // Ask for up to 1.2 so 1.2-core features are usable where present; shaders target 1.1.
  api_version_ = loader_version >= VK_API_VERSION_1_2 ? VK_API_VERSION_1_2 : VK_API_VERSION_1_1;

  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "pocketlora";
  app.pEngineName = "pocketlora";
  app.apiVersion = api_version_;

  std::vector<const char*> layers, exts;
  const bool want_validation = validation && has_layer("VK_LAYER_KHRONOS_validation") &&
                               has_instance_extension(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  if (validation && !want_validation)
    throw NoDevice("POCKETLORA_VALIDATION=1 but the Khronos validation layer is not installed "
                   "(Debian: apt install vulkan-validationlayers)");
  if (want_validation) {
    layers.push_back("VK_LAYER_KHRONOS_validation");
    exts.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  }
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pApplicationInfo = &app;
  ci.enabledLayerCount = static_cast<uint32_t>(layers.size());
  ci.ppEnabledLayerNames = layers.data();
  ci.enabledExtensionCount = static_cast<uint32_t>(exts.size());
  ci.ppEnabledExtensionNames = exts.data();

  VkDebugUtilsMessengerCreateInfoEXT dci{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
  dci.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  dci.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                    VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
  dci.pfnUserCallback = on_debug_message;
  if (want_validation) ci.pNext = &dci;  // also catches messages during vkCreate/DestroyInstance
  // Synchronization validation checks the barriers Sequence derives from declared accesses: a missing
  // read-after-write barrier becomes a validation error (and so a failed test).
  const VkValidationFeatureEnableEXT sync_validation = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
  VkValidationFeaturesEXT features{VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT};
  features.enabledValidationFeatureCount = 1;
  features.pEnabledValidationFeatures = &sync_validation;
  if (want_validation && has_instance_extension(VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME, "VK_LAYER_KHRONOS_validation")) {
    exts.push_back(VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
    ci.enabledExtensionCount = static_cast<uint32_t>(exts.size());
    ci.ppEnabledExtensionNames = exts.data();
    features.pNext = &dci;
    ci.pNext = &features;
  }

  VkResult r = vkCreateInstance(&ci, nullptr, &instance_);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED)
    throw NoDevice(std::string("no Vulkan driver found (") + result_name(r) +
                   "). Install a GPU driver, or Mesa's CPU driver lavapipe: apt install mesa-vulkan-drivers");
  check(r, "vkCreateInstance");
  try {
    load_instance_commands(instance_);
  } catch (...) {
    // Before vkDestroyInstance is known there is nothing to release it with but the loader's own lookup.
    if (auto destroy = reinterpret_cast<PFN_vkDestroyInstance>(vkGetInstanceProcAddr(instance_, "vkDestroyInstance")))
      destroy(instance_, nullptr);
    throw;
  }
  if (want_validation) {
    auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(instance_, "vkCreateDebugUtilsMessengerEXT"));
    if (create) check(create(instance_, &dci, nullptr, &messenger_), "vkCreateDebugUtilsMessengerEXT");
  }
}

Instance::~Instance() {
  if (messenger_) {
    auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(instance_, "vkDestroyDebugUtilsMessengerEXT"));
    if (destroy) destroy(instance_, messenger_, nullptr);
  }
  if (instance_) vkDestroyInstance(instance_, nullptr);
}

std::vector<VkPhysicalDevice> Instance::physical_devices() const {
  uint32_t n = 0;
  check(vkEnumeratePhysicalDevices(instance_, &n, nullptr), "vkEnumeratePhysicalDevices");
  std::vector<VkPhysicalDevice> devs(n);
  check(vkEnumeratePhysicalDevices(instance_, &n, devs.data()), "vkEnumeratePhysicalDevices");
  devs.resize(n);
  return devs;
}

}  // namespace pocketlora::vk
