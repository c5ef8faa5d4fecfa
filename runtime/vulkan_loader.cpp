#include "runtime/vulkan_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "runtime/error.h"

namespace pocketlora::vk {

#define PL_VK_DEFINE(name) PFN_##name name = nullptr;
PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
PL_VK_GLOBAL_COMMANDS(PL_VK_DEFINE)
PL_VK_OPTIONAL_GLOBAL_COMMANDS(PL_VK_DEFINE)
PL_VK_INSTANCE_COMMANDS(PL_VK_DEFINE)
#undef PL_VK_DEFINE

namespace {

std::mutex g_mu;
bool g_global_loaded = false;
bool g_instance_loaded = false;

// Returns the command or throws naming it: a loader that lacks a core command cannot run us.
template <typename Fn>
Fn resolve(VkInstance instance, const char* name) {
  auto f = reinterpret_cast<Fn>(vkGetInstanceProcAddr(instance, name));
  if (!f)
    throw NoDevice(std::string("the Vulkan loader has no ") + name +
                   " (it must provide Vulkan 1.1; update libvulkan1 or the GPU driver)");
  return f;
}

}  // namespace

std::vector<std::string> vulkan_loader_candidates() {
  if (const char* p = std::getenv("POCKETLORA_VULKAN_LOADER"); p && *p) return {p};
  return {"libvulkan.so.1", "libvulkan.so"};
}

void load_vulkan() {
  std::lock_guard lock(g_mu);
  if (g_global_loaded) return;
  std::string tried;
  void* lib = nullptr;
  for (const auto& name : vulkan_loader_candidates()) {
    lib = ::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib) break;
    const char* why = ::dlerror();
    tried += "\n  " + name + ": " + (why ? why : "not found");
  }
  if (!lib)
    throw NoDevice("no Vulkan loader (libvulkan.so.1) found; tried:" + tried +
                   "\nInstall one (Debian: apt install libvulkan1 mesa-vulkan-drivers) or use --backend cpu");
  // The loader stays open for the life of the process: its commands are called until exit.
  auto gipa = reinterpret_cast<PFN_vkGetInstanceProcAddr>(::dlsym(lib, "vkGetInstanceProcAddr"));
  if (!gipa) {
    ::dlclose(lib);
    throw NoDevice("the Vulkan loader found has no vkGetInstanceProcAddr; it is not a Vulkan loader");
  }
  vkGetInstanceProcAddr = gipa;
#define PL_VK_LOAD(name) name = resolve<PFN_##name>(VK_NULL_HANDLE, #name);
  PL_VK_GLOBAL_COMMANDS(PL_VK_LOAD)
#undef PL_VK_LOAD
  vkEnumerateInstanceVersion = reinterpret_cast<PFN_vkEnumerateInstanceVersion>(
      vkGetInstanceProcAddr(VK_NULL_HANDLE, "vkEnumerateInstanceVersion"));
  g_global_loaded = true;
}

void load_instance_commands(VkInstance instance) {
  std::lock_guard lock(g_mu);
  if (g_instance_loaded) return;
  if (!g_global_loaded) throw InternalError("load_instance_commands before load_vulkan");
#define PL_VK_LOAD(name) name = resolve<PFN_##name>(instance, #name);
  PL_VK_INSTANCE_COMMANDS(PL_VK_LOAD)
#undef PL_VK_LOAD
  g_instance_loaded = true;
}

}  // namespace pocketlora::vk
